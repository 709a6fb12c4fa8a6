// Nearest-neighbour 2x upsampling of the last two dims of a contiguous [N, C, H, W] tensor of 2- or 4-byte elements.
// One thread per output element (coalesced writes); output row R, column c reads input row R/2, column c/2 (every
// input row of every plane maps to two consecutive output rows, so planes need no separate index).
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

template <class T>
static __device__ __forceinline__ void upsample_nearest2x(const T* __restrict__ x, T* __restrict__ y, long long count,
                                                          int width)
{
    const unsigned out_width = 2u * static_cast<unsigned>(width);
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const unsigned long long row = i / out_width, column = i - row * out_width;
        y[i] = x[(row >> 1) * width + (column >> 1)];
    }
}

/// y [N, C, 2H, 2W] (count elements) from x [N, C, H, W] with W = width.
extern "C" __global__ void upsample_nearest2x_b2(const unsigned short* __restrict__ x, unsigned short* __restrict__ y,
                                                 long long count, int width)
{
    upsample_nearest2x(x, y, count, width);
}
MF_EXPORT_KERNEL(upsample_nearest2x_b2)

extern "C" __global__ void upsample_nearest2x_b4(const unsigned* __restrict__ x, unsigned* __restrict__ y,
                                                 long long count, int width)
{
    upsample_nearest2x(x, y, count, width);
}
MF_EXPORT_KERNEL(upsample_nearest2x_b4)
