// Softmax over the last dim of a contiguous f32 tensor: one block per row, exp(x - max) / sum. Three passes over the
// row (max, exponentials stored while summed, scale by 1/sum), each a block-wide reduction in a fixed order (warp
// shuffles, then shared memory): deterministic, no atomics. A NaN in a row makes the whole row NaN, as in PyTorch.
// y may be x (in place): each thread reads and writes only its own elements after the maximum is known.
// The gradient, dx = y · (dy - Σ dy·y), is one block per row too; dx may be dy.
//
// Launch: grid (rows), block a multiple of 32 up to 1024; no dynamic shared memory.
#include "common.cuh"

extern "C" __global__ void softmax_f32(const float* x, float* y, int length)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* in = x + offset;
    float* out = y + offset;
    const int stride = static_cast<int>(blockDim.x);

    float max = -INFINITY;
    for (int i = threadIdx.x; i < length; i += stride) max = mf::MaxPropagatingNaN{}(max, in[i]);
    max = mf::block_reduce(max, scratch, -INFINITY, mf::MaxPropagatingNaN{});

    float sum = 0.0f;
    for (int i = threadIdx.x; i < length; i += stride)
    {
        const float e = expf(in[i] - max);
        out[i] = e;
        sum += e;
    }
    const float scale = 1.0f / mf::block_sum(sum, scratch);
    for (int i = threadIdx.x; i < length; i += stride) out[i] *= scale;
}
MF_EXPORT_KERNEL(softmax_f32)

extern "C" __global__ void softmax_backward_f32(const float* __restrict__ y, const float* dy, float* dx, int length)
{
    __shared__ float scratch[32];
    const size_t offset = static_cast<size_t>(blockIdx.x) * length;
    const float* __restrict__ out = y + offset;
    const float* gradient = dy + offset;
    float dot = 0.0f;
    for (int i = threadIdx.x; i < length; i += blockDim.x) dot = fmaf(out[i], gradient[i], dot);
    dot = mf::block_sum(dot, scratch);
    for (int i = threadIdx.x; i < length; i += blockDim.x) dx[offset + i] = out[i] * (gradient[i] - dot);
}
MF_EXPORT_KERNEL(softmax_backward_f32)
