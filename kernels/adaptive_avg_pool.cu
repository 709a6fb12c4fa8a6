// Adaptive average pooling of the middle dim of a contiguous f32 [outer, n, inner] array to m bins, as
// F.adaptive_avg_pool1d: bin i averages inputs [floor(i·n/m), ceil((i+1)·n/m)). 2-D pooling runs as two such passes
// through the op's workspace (CudaKernels/AdaptiveAvgPool.cs). One thread per output element sums its bin in input
// order (deterministic); consecutive threads take consecutive `inner` positions, so reads are coalesced.
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

/// y [outer, m, inner] from x [outer, n, inner].
extern "C" __global__ void adaptive_avg_pool_f32(const float* __restrict__ x, float* __restrict__ y, long long outer,
                                                 int n, int m, long long inner)
{
    const unsigned long long count = static_cast<unsigned long long>(outer) * m * inner;
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const unsigned long long row = i / inner, j = i - row * inner;
        const unsigned long long o = row / m;
        const long long bin = static_cast<long long>(row - o * m);
        const long long first = bin * n / m, end = ((bin + 1) * n + m - 1) / m;
        const float* in = x + (o * n + first) * inner + j;
        float sum = 0.0f;
        for (long long k = 0; k < end - first; ++k) sum += in[k * inner];
        y[i] = sum * (1.0f / static_cast<float>(end - first));
    }
}
MF_EXPORT_KERNEL(adaptive_avg_pool_f32)

// The gradient, one 1-D pass: dx [outer, n, inner] from dy [outer, m, inner]. Input i lies in bins
// [floor(i·m/n), ceil((i+1)·m/n)) (the pooling formula with n and m swapped) and receives dy[bin] / |bin| from each,
// summed in bin order by the one thread that owns dx[i] (deterministic, no atomics). 2-D gradients run as two passes
// through the op's workspace (CudaKernels/AdaptiveAvgPool.cs).
//
// Launch: any grid, block a multiple of 32; no shared memory.
extern "C" __global__ void adaptive_avg_pool_backward_f32(const float* __restrict__ dy, float* __restrict__ dx,
                                                          long long outer, int m, int n, long long inner)
{
    const unsigned long long count = static_cast<unsigned long long>(outer) * n * inner;
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const unsigned long long row = i / inner, j = i - row * inner;
        const unsigned long long o = row / n;
        const long long input = static_cast<long long>(row - o * n);
        const long long first = input * m / n, last = ((input + 1) * m + n - 1) / n;
        const float* in = dy + (o * m + first) * inner + j;
        float sum = 0.0f;
        for (long long bin = first; bin < last; ++bin)
        {
            const long long bin_start = bin * n / m, bin_end = ((bin + 1) * n + m - 1) / m;
            sum += in[(bin - first) * inner] * (1.0f / static_cast<float>(bin_end - bin_start));
        }
        dx[i] = sum;
    }
}
MF_EXPORT_KERNEL(adaptive_avg_pool_backward_f32)
