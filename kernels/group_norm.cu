// Group normalisation over NCHW with an optional fused SiLU, and its gradients: one block per (group, batch item).
// Deterministic: fixed-order two-pass reductions (the mean, then the variance about the mean; both stay accurate
// when |mean| >> std, kernels/normalization.cuh) with warp shuffles and shared memory; no float atomics. Statistics are
// computed in f32 whatever the input type; gamma and beta are f32 (or null for 1 and 0).
//
// Launch (GroupNormKernel.cs): grid (groups, batch), block a multiple of 32 threads up to 1024, dynamic shared memory
// 2 * channels/groups floats (per-channel scale and shift).
#include "normalization.cuh"

namespace
{
/// The gradient at the affine output z = x̂ · gamma + beta: dy itself, or dy · SiLU'(z) when SiLU was fused.
static __device__ __forceinline__ float affine_output_gradient(float z, float dy, int fuse_silu)
{
    if (!fuse_silu) return dy;
    // σ(z) (1 + z σ(-z)); each sigmoid from its own exponential, so neither tail cancels.
    const float sigmoid = 1.0f / (1.0f + expf(-z)), complement = 1.0f / (1.0f + expf(z));
    return dy * sigmoid * fmaf(z, complement, 1.0f);
}

/// Fills the block's per-channel table: scale[c] = rstd_factor · gamma (or rstd_factor) and shift[c] = beta (or 0).
static __device__ __forceinline__ void load_affine(const float* __restrict__ gamma, const float* __restrict__ beta,
                                                   int first_channel, int channels_per_group, float rstd_factor,
                                                   float* scale, float* shift)
{
    for (int c = threadIdx.x; c < channels_per_group; c += blockDim.x)
    {
        scale[c] = gamma != nullptr ? rstd_factor * gamma[first_channel + c] : rstd_factor;
        shift[c] = beta != nullptr ? beta[first_channel + c] : 0.0f;
    }
    __syncthreads();
}
} // namespace

template <class T>
static __device__ __forceinline__ void group_norm(const T* __restrict__ x, const float* __restrict__ gamma,
                                                  const float* __restrict__ beta, T* __restrict__ y, int channels,
                                                  int groups, int spatial, float eps, int fuse_silu)
{
    extern __shared__ float group_norm_affine[]; // [scale of each channel of the group][beta of each channel]
    __shared__ float scratch[32];

    const int channels_per_group = channels / groups;
    const int count = channels_per_group * spatial;
    const int first_channel = static_cast<int>(blockIdx.x) * channels_per_group;
    const size_t offset = (static_cast<size_t>(blockIdx.y) * channels + first_channel) * spatial;
    const T* __restrict__ in = x + offset;
    T* __restrict__ out = y + offset;
    const int stride = static_cast<int>(blockDim.x);

    const mf::CenteredStats stats = mf::centered_stats(in, count, eps, scratch);
    float* scale = group_norm_affine;
    float* shift = group_norm_affine + channels_per_group;
    load_affine(gamma, beta, first_channel, channels_per_group, stats.rstd, scale, shift);

    for (int i = threadIdx.x; i < count; i += stride)
    {
        const int c = i / spatial;
        float v = fmaf(stats.centered(mf::to_float(in[i])), scale[c], shift[c]);
        if (fuse_silu) v = __fdividef(v, 1.0f + __expf(-v)); // exp overflow gives v * 0 = -0, as SiLU tends to
        out[i] = mf::from_float<T>(v);
    }
}

extern "C" __global__ void group_norm_f32(const float* __restrict__ x, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, float* __restrict__ y, int channels,
                                          int groups, int spatial, float eps, int fuse_silu)
{
    group_norm(x, gamma, beta, y, channels, groups, spatial, eps, fuse_silu);
}
MF_EXPORT_KERNEL(group_norm_f32)

extern "C" __global__ void group_norm_f16(const __half* __restrict__ x, const float* __restrict__ gamma,
                                          const float* __restrict__ beta, __half* __restrict__ y, int channels,
                                          int groups, int spatial, float eps, int fuse_silu)
{
    group_norm(x, gamma, beta, y, channels, groups, spatial, eps, fuse_silu);
}
MF_EXPORT_KERNEL(group_norm_f16)

extern "C" __global__ void group_norm_bf16(const __nv_bfloat16* __restrict__ x, const float* __restrict__ gamma,
                                           const float* __restrict__ beta, __nv_bfloat16* __restrict__ y,
                                           int channels, int groups, int spatial, float eps, int fuse_silu)
{
    group_norm(x, gamma, beta, y, channels, groups, spatial, eps, fuse_silu);
}
MF_EXPORT_KERNEL(group_norm_bf16)

/// dx of f32 group norm. With x̂ the normalised x, dz the gradient at z = x̂ · gamma + beta and g = dz · gamma, over the
/// group's m elements: dx = rstd · (g - Σg/m - x̂ · Σ(g·x̂)/m). dx may be dy (in place): every thread reads its own dy
/// elements in both passes before writing them.
extern "C" __global__ void group_norm_backward_input_f32(const float* __restrict__ x, const float* __restrict__ gamma,
                                                         const float* __restrict__ beta, const float* dy, float* dx,
                                                         int channels, int groups, int spatial, float eps,
                                                         int fuse_silu)
{
    // Its own name: a dynamic shared array declared in extern "C" kernels and in C++ functions under one name would
    // conflict in linkage (nvcc warning 1556).
    extern __shared__ float group_norm_gradient_affine[]; // [gamma of each channel of the group][beta of each channel]
    __shared__ float scratch[32];

    const int channels_per_group = channels / groups;
    const int count = channels_per_group * spatial;
    const int first_channel = static_cast<int>(blockIdx.x) * channels_per_group;
    const size_t offset = (static_cast<size_t>(blockIdx.y) * channels + first_channel) * spatial;
    const float* __restrict__ in = x + offset;
    const float* gradient = dy + offset;
    const int stride = static_cast<int>(blockDim.x);

    const mf::CenteredStats stats = mf::centered_stats(in, count, eps, scratch);
    float* weight = group_norm_gradient_affine;
    float* shift = group_norm_gradient_affine + channels_per_group;
    load_affine(gamma, beta, first_channel, channels_per_group, 1.0f, weight, shift);

    float sum = 0.0f, sum_times_normalized = 0.0f;
    for (int i = threadIdx.x; i < count; i += stride)
    {
        const int c = i / spatial;
        const float normalized = stats.normalized(in[i]);
        const float g = affine_output_gradient(fmaf(normalized, weight[c], shift[c]), gradient[i], fuse_silu) * weight[c];
        sum += g;
        sum_times_normalized = fmaf(g, normalized, sum_times_normalized);
    }
    const float mean_of_g = mf::block_sum(sum, scratch) / static_cast<float>(count);
    const float mean_of_g_times_normalized = mf::block_sum(sum_times_normalized, scratch) / static_cast<float>(count);

    for (int i = threadIdx.x; i < count; i += stride)
    {
        const int c = i / spatial;
        const float normalized = stats.normalized(in[i]);
        const float g = affine_output_gradient(fmaf(normalized, weight[c], shift[c]), gradient[i], fuse_silu) * weight[c];
        dx[offset + i] = stats.rstd * (g - mean_of_g - normalized * mean_of_g_times_normalized);
    }
}
MF_EXPORT_KERNEL(group_norm_backward_input_f32)

/// The batch item's terms of f32 group norm's parameter gradients: partials [batch, 2, channels] gets Σ dz·x̂ (row 0)
/// and Σ dz (row 1) over each channel's positions, one block-wide sum per channel; the host adds the batch items in
/// order.
extern "C" __global__ void group_norm_backward_params_f32(const float* __restrict__ x, const float* __restrict__ gamma,
                                                          const float* __restrict__ beta, const float* __restrict__ dy,
                                                          float* __restrict__ partials, int channels, int groups,
                                                          int spatial, float eps, int fuse_silu)
{
    // Its own name: a dynamic shared array declared in extern "C" kernels and in C++ functions under one name would
    // conflict in linkage (nvcc warning 1556).
    extern __shared__ float group_norm_gradient_affine[]; // [gamma of each channel of the group][beta of each channel]
    __shared__ float scratch[32];

    const int channels_per_group = channels / groups;
    const int count = channels_per_group * spatial;
    const int first_channel = static_cast<int>(blockIdx.x) * channels_per_group;
    const size_t offset = (static_cast<size_t>(blockIdx.y) * channels + first_channel) * spatial;
    const float* __restrict__ in = x + offset;
    const float* __restrict__ gradient = dy + offset;
    float* __restrict__ weight_sums = partials + static_cast<size_t>(blockIdx.y) * 2 * channels;
    float* __restrict__ bias_sums = weight_sums + channels;
    const int stride = static_cast<int>(blockDim.x);

    const mf::CenteredStats stats = mf::centered_stats(in, count, eps, scratch);
    float* weight = group_norm_gradient_affine;
    float* shift = group_norm_gradient_affine + channels_per_group;
    load_affine(gamma, beta, first_channel, channels_per_group, 1.0f, weight, shift);

    for (int c = 0; c < channels_per_group; ++c)
    {
        float sum = 0.0f, sum_times_normalized = 0.0f;
        for (int p = threadIdx.x; p < spatial; p += stride)
        {
            const int i = c * spatial + p;
            const float normalized = stats.normalized(in[i]);
            const float dz = affine_output_gradient(fmaf(normalized, weight[c], shift[c]), gradient[i], fuse_silu);
            sum += dz;
            sum_times_normalized = fmaf(dz, normalized, sum_times_normalized);
        }
        sum = mf::block_sum(sum, scratch);
        sum_times_normalized = mf::block_sum(sum_times_normalized, scratch);
        if (threadIdx.x == 0)
        {
            weight_sums[first_channel + c] = sum_times_normalized;
            bias_sums[first_channel + c] = sum;
        }
    }
}
MF_EXPORT_KERNEL(group_norm_backward_params_f32)
