// T5-style RMS normalisation over the last dim of a contiguous f32 tensor: y = x / sqrt(mean(x²) + eps) * weight, one
// block per row, the sum of squares reduced in a fixed order (deterministic, no atomics). y may be x (in place).
//
// Launch: grid (rows), block a multiple of 32 up to 1024; no dynamic shared memory.
#include "common.cuh"

extern "C" __global__ void rms_norm_f32(const float* x, const float* __restrict__ weight, float* y, int length,
                                        float eps)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* in = x + offset;
    float* out = y + offset;
    const int stride = static_cast<int>(blockDim.x);

    float squares = 0.0f;
    for (int i = threadIdx.x; i < length; i += stride) squares = fmaf(in[i], in[i], squares);
    // An IEEE square root and division (not rsqrtf's approximation), as the CPU backend and T5 compute it.
    const float reciprocal_rms = 1.0f / sqrtf(mf::block_sum(squares, scratch) / static_cast<float>(length) + eps);
    for (int i = threadIdx.x; i < length; i += stride) out[i] = in[i] * reciprocal_rms * weight[i];
}
MF_EXPORT_KERNEL(rms_norm_f32)
