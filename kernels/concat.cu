// Concatenation: each part is copied into a column band of the output seen as [outer, row bytes]. The host picks the
// widest unit (1 to 16 bytes) that divides every size, offset and address, so typical parts move in 16-byte vectors.
// One launch per part; one thread per unit in a grid-stride loop.
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

template <class T>
static __device__ __forceinline__ void copy_rows(const T* __restrict__ src, long long src_row, T* __restrict__ dst,
                                                 long long dst_row, long long rows, long long row_units)
{
    const unsigned long long count = static_cast<unsigned long long>(rows) * row_units;
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const unsigned long long row = i / row_units, column = i - row * row_units;
        dst[row * dst_row + column] = src[row * src_row + column];
    }
}

/// dst[r·dst_row + j] = src[r·src_row + j] for r < rows, j < row_units; strides and lengths in units of T.
extern "C" __global__ void concat_rows_b1(const unsigned char* __restrict__ src, long long src_row,
                                          unsigned char* __restrict__ dst, long long dst_row, long long rows,
                                          long long row_units)
{
    copy_rows(src, src_row, dst, dst_row, rows, row_units);
}
MF_EXPORT_KERNEL(concat_rows_b1)

extern "C" __global__ void concat_rows_b2(const unsigned short* __restrict__ src, long long src_row,
                                          unsigned short* __restrict__ dst, long long dst_row, long long rows,
                                          long long row_units)
{
    copy_rows(src, src_row, dst, dst_row, rows, row_units);
}
MF_EXPORT_KERNEL(concat_rows_b2)

extern "C" __global__ void concat_rows_b4(const unsigned* __restrict__ src, long long src_row,
                                          unsigned* __restrict__ dst, long long dst_row, long long rows,
                                          long long row_units)
{
    copy_rows(src, src_row, dst, dst_row, rows, row_units);
}
MF_EXPORT_KERNEL(concat_rows_b4)

extern "C" __global__ void concat_rows_b8(const unsigned long long* __restrict__ src, long long src_row,
                                          unsigned long long* __restrict__ dst, long long dst_row, long long rows,
                                          long long row_units)
{
    copy_rows(src, src_row, dst, dst_row, rows, row_units);
}
MF_EXPORT_KERNEL(concat_rows_b8)

extern "C" __global__ void concat_rows_b16(const uint4* __restrict__ src, long long src_row, uint4* __restrict__ dst,
                                           long long dst_row, long long rows, long long row_units)
{
    copy_rows(src, src_row, dst, dst_row, rows, row_units);
}
MF_EXPORT_KERNEL(concat_rows_b16)
