// Group normalisation over NCHW with an optional fused SiLU: one block per (group, batch item).
// Deterministic: a fixed-order two-pass reduction (the mean, then the variance about the mean; both stay accurate
// when |mean| >> std) with warp shuffles and shared memory; no float atomics. Statistics are computed in f32 whatever the
// input type; gamma and beta are f32 (or null for 1 and 0).
//
// Launch (kernels/group_norm.cu, GroupNormKernel.cs): grid (groups, batch), block a multiple of 32 threads up to
// 1024, dynamic shared memory 2 * channels/groups floats (per-channel scale and shift).
#include "common.cuh"

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

    // Everything is measured from a pivot (an element of the group): x - pivot is exact for nearby values, so the
    // mean and the deviations keep their digits when |mean| >> std, where an f32 mean alone is off by half an ulp.
    const float pivot = mf::to_float(in[0]);
    float shifted = 0.0f;
    for (int i = threadIdx.x; i < count; i += stride) shifted += mf::to_float(in[i]) - pivot;
    const float mean_from_pivot = mf::block_sum(shifted, scratch) / static_cast<float>(count);

    float squares = 0.0f;
    for (int i = threadIdx.x; i < count; i += stride)
    {
        const float d = (mf::to_float(in[i]) - pivot) - mean_from_pivot;
        squares = fmaf(d, d, squares);
    }
    const float variance = mf::block_sum(squares, scratch) / static_cast<float>(count);
    const float rstd = rsqrtf(variance + eps);

    float* scale = group_norm_affine;
    float* shift = group_norm_affine + channels_per_group;
    for (int c = threadIdx.x; c < channels_per_group; c += stride)
    {
        scale[c] = gamma != nullptr ? rstd * gamma[first_channel + c] : rstd;
        shift[c] = beta != nullptr ? beta[first_channel + c] : 0.0f;
    }
    __syncthreads();

    for (int i = threadIdx.x; i < count; i += stride)
    {
        const int c = i / spatial;
        float v = fmaf((mf::to_float(in[i]) - pivot) - mean_from_pivot, scale[c], shift[c]);
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
