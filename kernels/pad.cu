// Zero padding of the last two dims, each side on its own (F.pad(x, (left, right, top, bottom))), any element size.
// One thread per output element: inside the copied window it reads the input, elsewhere it writes zero bits (+0.0 in
// every float type).
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

template <class T>
static __device__ __forceinline__ void pad2d(const T* __restrict__ x, T* __restrict__ y, long long count, int height,
                                             int width, int out_height, int out_width, int top, int left)
{
    const unsigned long long plane = static_cast<unsigned long long>(out_height) * out_width;
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const unsigned long long p = i / plane, within = i - p * plane;
        const int r = static_cast<int>(within / out_width) - top;
        const int c = static_cast<int>(within % out_width) - left;
        const bool inside = r >= 0 && r < height && c >= 0 && c < width;
        y[i] = inside ? x[(p * height + r) * width + c] : T{};
    }
}

/// y [..., out_height, out_width] (count elements) from x [..., height, width] placed at (top, left).
extern "C" __global__ void pad2d_b2(const unsigned short* __restrict__ x, unsigned short* __restrict__ y,
                                    long long count, int height, int width, int out_height, int out_width, int top,
                                    int left)
{
    pad2d(x, y, count, height, width, out_height, out_width, top, left);
}
MF_EXPORT_KERNEL(pad2d_b2)

extern "C" __global__ void pad2d_b4(const unsigned* __restrict__ x, unsigned* __restrict__ y, long long count,
                                    int height, int width, int out_height, int out_width, int top, int left)
{
    pad2d(x, y, count, height, width, out_height, out_width, top, left);
}
MF_EXPORT_KERNEL(pad2d_b4)

extern "C" __global__ void pad2d_b8(const unsigned long long* __restrict__ x, unsigned long long* __restrict__ y,
                                    long long count, int height, int width, int out_height, int out_width, int top,
                                    int left)
{
    pad2d(x, y, count, height, width, out_height, out_width, top, left);
}
MF_EXPORT_KERNEL(pad2d_b8)
