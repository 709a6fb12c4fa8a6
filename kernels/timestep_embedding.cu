// Sinusoidal timestep embedding, diffusers' get_timestep_embedding: y [B, dim] with column k of each half holding
// sin or cos of t · frequency_k · scale, frequency_k = exp(-ln(max_period) · k / (dim/2 - shift)), [sin | cos] or
// [cos | sin] when flipped, and a zero last column for odd dim. The exponent is rounded in f32 exactly as the f32
// torch code and the CPU backend do; exp, sin and cos are evaluated in double and rounded once, so results match the
// CPU backend (the op is tiny: B·dim elements).
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

template <class T>
static __device__ __forceinline__ void timestep_embedding(const T* __restrict__ timesteps, float* __restrict__ y,
                                                          int batch, int dim, int flip, float neg_log_period,
                                                          float denominator, float scale)
{
    const int half = dim / 2;
    const unsigned long long count = static_cast<unsigned long long>(batch) * dim;
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const int b = static_cast<int>(i / dim), j = static_cast<int>(i % dim);
        if (j >= 2 * half)
        {
            y[i] = 0.0f; // the odd dim's padding column
            continue;
        }
        const bool first_half = j < half;
        const int k = first_half ? j : j - half;
        const float exponent = neg_log_period * static_cast<float>(k) / denominator;
        const float frequency = static_cast<float>(exp(static_cast<double>(exponent)));
        const float argument = static_cast<float>(timesteps[b]) * frequency * scale; // two f32 roundings, as torch
        const bool sine = first_half != (flip != 0);
        y[i] = static_cast<float>(sine ? sin(static_cast<double>(argument)) : cos(static_cast<double>(argument)));
    }
}

/// y [batch, dim] from timesteps [batch] (f32, i32 or i64).
extern "C" __global__ void timestep_embedding_f32(const float* __restrict__ timesteps, float* __restrict__ y, int batch,
                                                  int dim, int flip, float neg_log_period, float denominator,
                                                  float scale)
{
    timestep_embedding(timesteps, y, batch, dim, flip, neg_log_period, denominator, scale);
}
MF_EXPORT_KERNEL(timestep_embedding_f32)

extern "C" __global__ void timestep_embedding_i32(const int* __restrict__ timesteps, float* __restrict__ y, int batch,
                                                  int dim, int flip, float neg_log_period, float denominator,
                                                  float scale)
{
    timestep_embedding(timesteps, y, batch, dim, flip, neg_log_period, denominator, scale);
}
MF_EXPORT_KERNEL(timestep_embedding_i32)

extern "C" __global__ void timestep_embedding_i64(const long long* __restrict__ timesteps, float* __restrict__ y,
                                                  int batch, int dim, int flip, float neg_log_period, float denominator,
                                                  float scale)
{
    timestep_embedding(timesteps, y, batch, dim, flip, neg_log_period, denominator, scale);
}
MF_EXPORT_KERNEL(timestep_embedding_i64)
