// The gradient of a strided view: y (contiguous, the viewed tensor's dims) is zeroed, then each element of x (the
// view's gradient, contiguous) is written where the view reads it. The view addresses distinct elements (slices,
// permutes, reshapes), so the scatter needs no atomics. Two launches: optimizer.cu's fill_f32, then this scatter.
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

/// y[offset + position of i in the view d0..d5 with element strides s0..s5] = x[i].
extern "C" __global__ void view_scatter_f32(const float* __restrict__ x, float* __restrict__ y, long long count,
                                            long long offset, int rank, int d0, int d1, int d2, int d3, int d4, int d5,
                                            long long s0, long long s1, long long s2, long long s3, long long s4,
                                            long long s5)
{
    const int dims[mf::MaxRank] = {d0, d1, d2, d3, d4, d5};
    const long long strides[mf::MaxRank] = {s0, s1, s2, s3, s4, s5};
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        y[offset + mf::strided_offset(i, rank, dims, strides)] = x[i];
}
MF_EXPORT_KERNEL(view_scatter_f32)
