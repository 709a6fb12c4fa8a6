// T5-style RMS normalisation over the last dim of a contiguous f32 tensor, y = x / sqrt(mean(x²) + eps) * weight, and
// its gradients: one block per row (per chunk of rows for the weight gradient), sums reduced in a fixed order
// (kernels/normalization.cuh; deterministic, no atomics). y may be x and dx may be dy (in place).
//
// Launch: grid (rows), or (row chunks) for rms_norm_backward_weight_f32; block a multiple of 32 up to 1024; no dynamic
// shared memory.
#include "normalization.cuh"

extern "C" __global__ void rms_norm_f32(const float* x, const float* __restrict__ weight, float* y, int length,
                                        float eps)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* in = x + offset;
    float* out = y + offset;
    const float reciprocal_rms = mf::rms_stats(in, length, eps, scratch).rstd;
    for (int i = threadIdx.x; i < length; i += blockDim.x) out[i] = in[i] * reciprocal_rms * weight[i];
}
MF_EXPORT_KERNEL(rms_norm_f32)

/// dx = r · (g - x̂ · mean(g·x̂)) per row, with x̂ = x · r and g = dy · weight.
extern "C" __global__ void rms_norm_backward_input_f32(const float* __restrict__ x, const float* __restrict__ weight,
                                                       const float* dy, float* dx, int length, float eps)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* __restrict__ in = x + offset;
    const float* gradient = dy + offset;

    const mf::RmsStats stats = mf::rms_stats(in, length, eps, scratch);
    float sum_times_normalized = 0.0f;
    for (int i = threadIdx.x; i < length; i += blockDim.x)
        sum_times_normalized = fmaf(gradient[i] * weight[i], stats.normalized(in[i]), sum_times_normalized);
    const float mean_of_g_times_normalized = mf::block_sum(sum_times_normalized, scratch) / static_cast<float>(length);
    for (int i = threadIdx.x; i < length; i += blockDim.x)
        dx[offset + i] = stats.rstd * (gradient[i] * weight[i] - stats.normalized(in[i]) * mean_of_g_times_normalized);
}
MF_EXPORT_KERNEL(rms_norm_backward_input_f32)

/// partials [chunks, length]: Σ dy·x̂ over each chunk's rows (see mf::row_parameter_partials).
extern "C" __global__ void rms_norm_backward_weight_f32(const float* __restrict__ x, const float* __restrict__ dy,
                                                        float* __restrict__ partials, int rows, int length,
                                                        int rows_per_chunk, float eps)
{
    mf::row_parameter_partials<false>(x, dy, partials, rows, length, rows_per_chunk, eps);
}
MF_EXPORT_KERNEL(rms_norm_backward_weight_f32)
