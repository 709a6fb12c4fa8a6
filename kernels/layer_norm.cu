// Layer normalisation over the last dim of a contiguous f32 tensor, and its gradients. Statistics as in group_norm.cu
// (kernels/normalization.cuh): a fixed-order two-pass reduction (the mean, then the variance about it) measured from a
// pivot element, so rows with |mean| >> std keep their digits; deterministic, no atomics. weight and bias are optional
// (null: 1, 0). y may be x and dx may be dy (in place): the statistics are complete before any thread writes, and each
// writes only what it read.
//
// Launch: grid (rows) for layer_norm_f32 and layer_norm_backward_input_f32, grid (row chunks) for
// layer_norm_backward_params_f32; block a multiple of 32 up to 1024; no dynamic shared memory.
#include "normalization.cuh"

extern "C" __global__ void layer_norm_f32(const float* x, const float* __restrict__ weight,
                                          const float* __restrict__ bias, float* y, int length, float eps)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* in = x + offset;
    float* out = y + offset;

    const mf::CenteredStats stats = mf::centered_stats(in, length, eps, scratch);
    for (int i = threadIdx.x; i < length; i += blockDim.x)
    {
        float v = stats.centered(in[i]) * stats.rstd;
        if (weight != nullptr) v *= weight[i];
        if (bias != nullptr) v += bias[i];
        out[i] = v;
    }
}
MF_EXPORT_KERNEL(layer_norm_f32)

/// dx = rstd · (g - mean(g) - x̂ · mean(g·x̂)) per row, g = dy · weight.
extern "C" __global__ void layer_norm_backward_input_f32(const float* __restrict__ x, const float* __restrict__ weight,
                                                         const float* dy, float* dx, int length, float eps)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* __restrict__ in = x + offset;
    const float* gradient = dy + offset;

    const mf::CenteredStats stats = mf::centered_stats(in, length, eps, scratch);
    float sum = 0.0f, sum_times_normalized = 0.0f;
    for (int i = threadIdx.x; i < length; i += blockDim.x)
    {
        const float g = weight != nullptr ? gradient[i] * weight[i] : gradient[i];
        sum += g;
        sum_times_normalized = fmaf(g, stats.normalized(in[i]), sum_times_normalized);
    }
    const float mean_of_g = mf::block_sum(sum, scratch) / static_cast<float>(length);
    const float mean_of_g_times_normalized = mf::block_sum(sum_times_normalized, scratch) / static_cast<float>(length);
    for (int i = threadIdx.x; i < length; i += blockDim.x)
    {
        const float g = weight != nullptr ? gradient[i] * weight[i] : gradient[i];
        dx[offset + i] = stats.rstd * (g - mean_of_g - stats.normalized(in[i]) * mean_of_g_times_normalized);
    }
}
MF_EXPORT_KERNEL(layer_norm_backward_input_f32)

/// partials [chunks, 2, length]: Σ dy·x̂ and Σ dy over each chunk's rows (see mf::row_parameter_partials).
extern "C" __global__ void layer_norm_backward_params_f32(const float* __restrict__ x, const float* __restrict__ dy,
                                                          float* __restrict__ partials, int rows, int length,
                                                          int rows_per_chunk, float eps)
{
    mf::row_parameter_partials<true>(x, dy, partials, rows, length, rows_per_chunk, eps);
}
MF_EXPORT_KERNEL(layer_norm_backward_params_f32)
