// Strided view -> contiguous tensor (permute, slice, expand made dense), for any 2-, 4- or 8-byte element. The host
// coalesces the view first (CudaKernels/StridedIndex.cs): at most mf::MaxRank dims remain. One thread per destination
// element in a grid-stride loop: writes are coalesced, reads follow the view's strides.
//
// Launch: any grid, block a multiple of 32; no shared memory.
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
