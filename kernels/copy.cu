// Strided view -> contiguous tensor (permute, slice, expand made dense), for any 2-, 4- or 8-byte element. The host
// coalesces the view first (CudaKernels/StridedIndex.cs): at most mf::MaxRank dims remain.
//
// copy_strided_*: one thread per destination element in a grid-stride loop: writes are coalesced, reads follow the
// view's strides. Launch: any grid, block a multiple of 32; no shared memory.
//
// copy_transpose_*: views whose two innermost dims are transposed (source stride 1 along the second-to-last output dim,
// the common permute, e.g. [B, N, C] -> [B, C, N] or NCHW -> NHWC), where copy_strided would read one element per
// memory transaction. A block moves a 32×32 tile through shared memory (one pad column keeps both the column writes and
// the row reads free of bank conflicts): reads run along the source's contiguous dim, writes along the destination's.
// Same parameters as copy_strided. Launch: block (32, 8), grid (ceil(cols / 32), up to ceil(rows / 32), up to the
// number of planes), where rows and cols are the two innermost dims and planes the product of the others; y and z loop.
#include "common.cuh"

template <class T, class Index>
static __device__ __forceinline__ void copy_strided_loop(const T* __restrict__ src, T* __restrict__ dst, Index count,
                                                         int rank, const int* dims, const long long* strides)
{
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
        dst[i] = src[mf::strided_offset(static_cast<Index>(i), rank, dims, strides)];
}

template <class T>
static __device__ __forceinline__ void
copy_strided(const T* __restrict__ src, T* __restrict__ dst, long long count, int rank, int d0, int d1, int d2, int d3,
             int d4, int d5, long long s0, long long s1, long long s2, long long s3, long long s4, long long s5)
{
    const int dims[mf::MaxRank] = {d0, d1, d2, d3, d4, d5};
    const long long strides[mf::MaxRank] = {s0, s1, s2, s3, s4, s5};
    if (count <= 0xffffffffll)
        copy_strided_loop<T, unsigned>(src, dst, static_cast<unsigned>(count), rank, dims, strides);
    else
        copy_strided_loop<T, unsigned long long>(src, dst, static_cast<unsigned long long>(count), rank, dims, strides);
}

/// dst[i] = src[offset of i in the view d0..d5 with element strides s0..s5].
extern "C" __global__ void copy_strided_b2(const unsigned short* __restrict__ src, unsigned short* __restrict__ dst,
                                           long long count, int rank, int d0, int d1, int d2, int d3, int d4, int d5,
                                           long long s0, long long s1, long long s2, long long s3, long long s4,
                                           long long s5)
{
    copy_strided(src, dst, count, rank, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}
MF_EXPORT_KERNEL(copy_strided_b2)

extern "C" __global__ void copy_strided_b4(const unsigned* __restrict__ src, unsigned* __restrict__ dst,
                                           long long count, int rank, int d0, int d1, int d2, int d3, int d4, int d5,
                                           long long s0, long long s1, long long s2, long long s3, long long s4,
                                           long long s5)
{
    copy_strided(src, dst, count, rank, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}
MF_EXPORT_KERNEL(copy_strided_b4)

extern "C" __global__ void copy_strided_b8(const unsigned long long* __restrict__ src,
                                           unsigned long long* __restrict__ dst, long long count, int rank, int d0,
                                           int d1, int d2, int d3, int d4, int d5, long long s0, long long s1,
                                           long long s2, long long s3, long long s4, long long s5)
{
    copy_strided(src, dst, count, rank, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}
MF_EXPORT_KERNEL(copy_strided_b8)

constexpr int TransposeTile = 32;
constexpr int TransposeRowsPerPass = 8; // blockDim.y: each thread moves TransposeTile / 8 elements per tile

template <class T>
static __device__ __forceinline__ void
copy_transpose(const T* __restrict__ src, T* __restrict__ dst, int rank, int d0, int d1, int d2, int d3, int d4, int d5,
               long long s0, long long s1, long long s2, long long s3, long long s4, long long s5)
{
    __shared__ T tile[TransposeTile][TransposeTile + 1];
    const int dims[mf::MaxRank] = {d0, d1, d2, d3, d4, d5};
    const long long strides[mf::MaxRank] = {s0, s1, s2, s3, s4, s5};
    // The two innermost dims and the outer dims' product (the host launches at most 2^31 planes), taken from the
    // scalar parameters: indexing the arrays by rank would move them to local memory.
    int rows = d0, cols = d1;
    long long column_stride = s1; // between output columns in the source; rows are adjacent there
    unsigned planes = 1;
    switch (rank)
    {
    case 3: rows = d1, cols = d2, column_stride = s2, planes = d0; break;
    case 4: rows = d2, cols = d3, column_stride = s3, planes = d0 * d1; break;
    case 5: rows = d3, cols = d4, column_stride = s4, planes = d0 * d1 * d2; break;
    case 6: rows = d4, cols = d5, column_stride = s5, planes = d0 * d1 * d2 * d3; break;
    default: break; // rank 2: one plane
    }
    const long long plane = static_cast<long long>(rows) * cols;
    const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
    const int c0 = static_cast<int>(blockIdx.x) * TransposeTile;
    for (unsigned p = blockIdx.z; p < planes; p += gridDim.z)
    {
        const T* src_plane = src + mf::strided_offset(p, rank - 2, dims, strides);
        T* dst_plane = dst + static_cast<long long>(p) * plane;
        for (int r0 = static_cast<int>(blockIdx.y) * TransposeTile; r0 < rows;
             r0 += static_cast<int>(gridDim.y) * TransposeTile)
        {
            // Consecutive threads read consecutive rows of one output column: adjacent in the source.
            for (int k = ty; k < TransposeTile; k += TransposeRowsPerPass)
            {
                const int r = r0 + tx, c = c0 + k;
                if (r < rows && c < cols) tile[k][tx] = src_plane[r + c * column_stride];
            }
            __syncthreads();
            // Consecutive threads write consecutive columns of one output row.
            for (int k = ty; k < TransposeTile; k += TransposeRowsPerPass)
            {
                const int r = r0 + k, c = c0 + tx;
                if (r < rows && c < cols) dst_plane[static_cast<long long>(r) * cols + c] = tile[tx][k];
            }
            __syncthreads(); // the next tile overwrites this one
        }
    }
}

/// dst = the view d0..d5 / s0..s5 of src, whose last two dims are transposed in memory (s[rank - 2] == 1).
extern "C" __global__ void copy_transpose_b2(const unsigned short* __restrict__ src, unsigned short* __restrict__ dst,
                                             long long /* count: as copy_strided */, int rank, int d0, int d1, int d2,
                                             int d3, int d4, int d5, long long s0, long long s1, long long s2,
                                             long long s3, long long s4, long long s5)
{
    copy_transpose(src, dst, rank, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}
MF_EXPORT_KERNEL(copy_transpose_b2)

extern "C" __global__ void copy_transpose_b4(const unsigned* __restrict__ src, unsigned* __restrict__ dst,
                                             long long /* count: as copy_strided */, int rank, int d0, int d1, int d2,
                                             int d3, int d4, int d5, long long s0, long long s1, long long s2,
                                             long long s3, long long s4, long long s5)
{
    copy_transpose(src, dst, rank, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}
MF_EXPORT_KERNEL(copy_transpose_b4)

extern "C" __global__ void copy_transpose_b8(const unsigned long long* __restrict__ src,
                                             unsigned long long* __restrict__ dst, long long /* count */, int rank,
                                             int d0, int d1, int d2, int d3, int d4, int d5, long long s0, long long s1,
                                             long long s2, long long s3, long long s4, long long s5)
{
    copy_transpose(src, dst, rank, d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5);
}
MF_EXPORT_KERNEL(copy_transpose_b8)
