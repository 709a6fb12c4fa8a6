// The optimizer family over the flat f32 parameter buffer (Ops/Optimizer.cs): the AdamW step with global-norm gradient
// clipping, the EMA update, fill, and Σ x² for the gradient norm. The elementwise kernels are grid-stride loops, one
// thread per parameter; each thread reads its element of every operand before writing, so the output may be the
// state it updates (the graph assigns the result into the state's own memory). Σ x² is deterministic without atomics:
// a grid whose size depends only on the element count writes one double partial per block, then one block adds the
// partials in a fixed order.
//
// Launch: elementwise kernels any grid, block a multiple of 32; sum_of_squares_blocks_f32 a grid of `partials` blocks
// and sum_of_squares_final_f32 one block, each a multiple of 32 threads up to 1024; no dynamic shared memory.
#include "common.cuh"

/// One AdamW step (torch.optim.AdamW, decoupled weight decay) with clip_grad_norm_ folded in. state and out are
/// [3, count] (weights, first moment, second moment) and may be the same memory; schedule is (learning rate,
/// 1 - beta1^t, 1 - beta2^t); grad_square_sum is Σ grad². The per-step scalars are the f32 operations of
/// AdamWStepOp.Coefficients.Step, formed by every thread from the same four values.
extern "C" __global__ void adamw_step_f32(const float* state, const float* __restrict__ grad,
                                          const float* __restrict__ schedule,
                                          const float* __restrict__ grad_square_sum, float* out, long long count,
                                          float beta1, float one_minus_beta1, float beta2, float one_minus_beta2,
                                          float epsilon, float weight_decay, float max_grad_norm, int clips)
{
    const float learning_rate = schedule[0];
    float clip = 1.0f;
    if (clips)
    {
        const float ratio = max_grad_norm / (sqrtf(*grad_square_sum) + 1e-6f);
        clip = ratio >= 1.0f ? 1.0f : ratio; // NaN stays NaN, as torch.clamp(max=1)
    }
    const float weight_factor = 1.0f - learning_rate * weight_decay;
    const float step_size = learning_rate / schedule[1];
    const float bias_correction2_sqrt = sqrtf(schedule[2]);
    const unsigned long long n = static_cast<unsigned long long>(count);
    for (unsigned long long i = mf::grid_first(); i < n; i += mf::grid_stride())
    {
        const float g = grad[i] * clip;
        const float w = state[i], m = state[n + i], v = state[2 * n + i];
        const float new_m = m * beta1 + g * one_minus_beta1;
        const float new_v = v * beta2 + one_minus_beta2 * g * g;
        const float denominator = sqrtf(new_v) / bias_correction2_sqrt + epsilon;
        out[i] = w * weight_factor - step_size * new_m / denominator;
        out[n + i] = new_m;
        out[2 * n + i] = new_v;
    }
}
MF_EXPORT_KERNEL(adamw_step_f32)

/// out = decay·ema + (1 - decay)·weights; out may be ema.
extern "C" __global__ void ema_update_f32(const float* ema, const float* __restrict__ weights, float* out,
                                          long long count, float decay, float one_minus_decay)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        out[i] = ema[i] * decay + weights[i] * one_minus_decay;
}
MF_EXPORT_KERNEL(ema_update_f32)

extern "C" __global__ void fill_f32(float* __restrict__ y, long long count, float value)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        y[i] = value;
}
MF_EXPORT_KERNEL(fill_f32)

/// partials[block] = Σ x² over the block's grid-stride share of x, in double.
extern "C" __global__ void sum_of_squares_blocks_f32(const float* __restrict__ x, double* __restrict__ partials,
                                                     long long count)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const double value = x[i];
        sum += value * value;
    }
    sum = mf::block_reduce(sum, scratch, 0.0, mf::Add{});
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}
MF_EXPORT_KERNEL(sum_of_squares_blocks_f32)

/// y[0] = Σ partials, by one block in a fixed order, rounded once to f32.
extern "C" __global__ void sum_of_squares_final_f32(const double* __restrict__ partials, float* __restrict__ y,
                                                    int count)
{
    __shared__ double scratch[32];
    double sum = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = mf::block_reduce(sum, scratch, 0.0, mf::Add{});
    if (threadIdx.x == 0) y[0] = static_cast<float>(sum);
}
MF_EXPORT_KERNEL(sum_of_squares_final_f32)
