// Shared by group_norm.cu, layer_norm.cu and rms_norm.cu: the statistics of one normalised span (a group of a batch
// item, or a row) computed by one block, and the per-chunk partial sums of the row normalisations' parameter gradients.
// Every reduction is mf::block_sum: a fixed order, deterministic, no atomics.
#pragma once

#include "common.cuh"

namespace mf
{
/// Mean and 1/sqrt(variance + eps) of a span, with the mean measured from a pivot (the span's first element): x - pivot
/// is exact for nearby values, so the mean and the deviations keep their digits when |mean| >> std, where an f32 mean
/// alone is off by half an ulp.
struct CenteredStats
{
    float pivot, mean_from_pivot, rstd;

    __device__ __forceinline__ float centered(float x) const { return (x - pivot) - mean_from_pivot; }
    __device__ __forceinline__ float normalized(float x) const { return centered(x) * rstd; }
};

/// The statistics of in[0, count) by the whole block: a pass for the mean, one for the variance about it (two-pass).
template <class T>
static __device__ __forceinline__ CenteredStats centered_stats(const T* in, int count, float eps, float* scratch)
{
    const int stride = static_cast<int>(blockDim.x);
    const float pivot = to_float(in[0]);
    float shifted = 0.0f;
    for (int i = threadIdx.x; i < count; i += stride) shifted += to_float(in[i]) - pivot;
    const float mean_from_pivot = block_sum(shifted, scratch) / static_cast<float>(count);

    float squares = 0.0f;
    for (int i = threadIdx.x; i < count; i += stride)
    {
        const float d = (to_float(in[i]) - pivot) - mean_from_pivot;
        squares = fmaf(d, d, squares);
    }
    const float variance = block_sum(squares, scratch) / static_cast<float>(count);
    return {pivot, mean_from_pivot, rsqrtf(variance + eps)};
}

/// RMS norm's scale of a span, x̂ = x · r with r = 1/sqrt(mean(x²) + eps): no centring.
struct RmsStats
{
    float rstd;

    __device__ __forceinline__ float normalized(float x) const { return x * rstd; }
};

/// r of in[0, length) by the whole block, with an IEEE square root and division (not rsqrtf), as T5 computes it.
static __device__ __forceinline__ RmsStats rms_stats(const float* in, int length, float eps, float* scratch)
{
    float squares = 0.0f;
    for (int i = threadIdx.x; i < length; i += static_cast<int>(blockDim.x)) squares = fmaf(in[i], in[i], squares);
    return {1.0f / sqrtf(block_sum(squares, scratch) / static_cast<float>(length) + eps)};
}

/// The statistics of one row of layer norm (Centered) or RMS norm.
template <bool Centered>
static __device__ __forceinline__ auto row_stats(const float* in, int length, float eps, float* scratch)
{
    if constexpr (Centered)
        return centered_stats(in, length, eps, scratch);
    else
        return rms_stats(in, length, eps, scratch);
}

/// One block per chunk of `rows_per_chunk` rows: partials[chunk] gets Σ dy·x̂ over the chunk's rows in its first `length`
/// floats and, when Centered (layer norm), Σ dy in the next `length`. Each thread owns the columns threadIdx.x + k ·
/// blockDim.x and adds the rows in order, so the sums are deterministic; the host then adds the chunks in order.
template <bool Centered>
static __device__ __forceinline__ void row_parameter_partials(const float* __restrict__ x, const float* __restrict__ dy,
                                                              float* __restrict__ partials, int rows, int length,
                                                              int rows_per_chunk, float eps)
{
    __shared__ float scratch[32];
    const int first = static_cast<int>(blockIdx.x) * rows_per_chunk;
    const int last = min(rows, first + rows_per_chunk);
    float* weight_sum = partials + static_cast<size_t>(blockIdx.x) * (Centered ? 2 : 1) * length;
    for (int j = threadIdx.x; j < length; j += blockDim.x)
    {
        weight_sum[j] = 0.0f;
        if constexpr (Centered) weight_sum[length + j] = 0.0f;
    }
    for (int row = first; row < last; ++row)
    {
        const float* in = x + static_cast<size_t>(row) * length;
        const float* gradient = dy + static_cast<size_t>(row) * length;
        const auto stats = row_stats<Centered>(in, length, eps, scratch);
        for (int j = threadIdx.x; j < length; j += blockDim.x)
        {
            weight_sum[j] = fmaf(gradient[j], stats.normalized(in[j]), weight_sum[j]);
            if constexpr (Centered) weight_sum[length + j] += gradient[j];
        }
    }
}
} // namespace mf
