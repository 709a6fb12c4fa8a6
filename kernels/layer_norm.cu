// Layer normalisation over the last dim of a contiguous f32 tensor: one block per row. Statistics as in
// group_norm.cu: a fixed-order two-pass reduction (the mean, then the variance about it) measured from a pivot element,
// so rows with |mean| >> std keep their digits; deterministic, no atomics. weight and bias are optional (null: 1, 0).
// y may be x (in place): the statistics are complete before any thread writes, and each writes only what it read.
//
// Launch: grid (rows), block a multiple of 32 up to 1024; no dynamic shared memory.
#include "common.cuh"

extern "C" __global__ void layer_norm_f32(const float* x, const float* __restrict__ weight,
                                          const float* __restrict__ bias, float* y, int length, float eps)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* in = x + offset;
    float* out = y + offset;
    const int stride = static_cast<int>(blockDim.x);

    const float pivot = in[0];
    float shifted = 0.0f;
    for (int i = threadIdx.x; i < length; i += stride) shifted += in[i] - pivot;
    const float mean_from_pivot = mf::block_sum(shifted, scratch) / static_cast<float>(length);

    float squares = 0.0f;
    for (int i = threadIdx.x; i < length; i += stride)
    {
        const float d = (in[i] - pivot) - mean_from_pivot;
        squares = fmaf(d, d, squares);
    }
    const float rstd = rsqrtf(mf::block_sum(squares, scratch) / static_cast<float>(length) + eps);

    for (int i = threadIdx.x; i < length; i += stride)
    {
        float v = ((in[i] - pivot) - mean_from_pivot) * rstd;
        if (weight != nullptr) v *= weight[i];
        if (bias != nullptr) v += bias[i];
        out[i] = v;
    }
}
MF_EXPORT_KERNEL(layer_norm_f32)
