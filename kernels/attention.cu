// Fused multi-head attention, flash style: out = softmax(Q·Kᵀ·scale + key mask)·V per (batch, head), never holding
// the N×M score matrix. Inputs are token-major: q [B, N, H·D], k and v [B, M, H·D] (head h owns channels
// [h·D, (h+1)·D)), an optional key padding mask [B, M] of int (nonzero = attend); out [B, N, H·D] likewise.
//
// One block per (query tile, batch·head). The block keeps its query tile (pre-scaled) and an f32 output accumulator in
// shared memory and walks the keys a tile at a time: stage K and V, compute the tile's scores, then one warp per query
// row folds them into the row's running max and sum (online softmax) and rescales the accumulator. Every sum runs in a
// fixed order (sequential loops, warp butterflies): deterministic, no atomics. A row whose keys are all masked (or
// M = 0) keeps max -inf and sum 0 and is written as zeros.
//
// Tile sizes are launch arguments, chosen by the host (CudaKernels/Attention.cs) so that the shared memory of
// attention_shared_floats fits: any head dim works, larger ones with smaller tiles.
//
// Launch: grid (ceil(N / query_tile), B·H), block a multiple of 32 (one warp per query row at a time),
// key_tile <= 32 (one lane per key), dynamic shared memory attention_shared_floats(...) * 4 bytes.
#include "common.cuh"

namespace
{
/// Shared-memory layout of one block, in floats; the host computes the same sizes (AttentionKernel.SharedFloats).
struct AttentionTiles
{
    float* queries;     // [query_tile][head_dim], already multiplied by scale
    float* keys;        // [key_tile][head_dim + 1]: the pad spreads a column's reads over banks
    float* values;      // [key_tile][head_dim]
    float* accumulator; // [query_tile][head_dim]: unnormalised output, rescaled as the running max grows
    float* scores;      // [query_tile][key_tile]: scores, then their exponentials
    float* row_max;     // [query_tile]
    float* row_sum;     // [query_tile]
    float* rescale;     // [query_tile]: exp(old max - new max) of the current key tile
    int* key_valid;     // [key_tile]: 1 where the key exists and is not masked
};

__device__ __forceinline__ AttentionTiles carve_tiles(float* shared, int query_tile, int key_tile, int head_dim)
{
    AttentionTiles t;
    t.queries = shared;
    t.keys = t.queries + query_tile * head_dim;
    t.values = t.keys + key_tile * (head_dim + 1);
    t.accumulator = t.values + key_tile * head_dim;
    t.scores = t.accumulator + query_tile * head_dim;
    t.row_max = t.scores + query_tile * key_tile;
    t.row_sum = t.row_max + query_tile;
    t.rescale = t.row_sum + query_tile;
    t.key_valid = reinterpret_cast<int*>(t.rescale + query_tile);
    return t;
}
} // namespace

extern "C" __global__ void attention_f32(const float* q, const float* k, const float* v, const int* key_mask, float* out,
                                         int queries, int keys, int heads, int head_dim, float scale, int query_tile,
                                         int key_tile)
{
    extern __shared__ float attention_shared[];
    const AttentionTiles t = carve_tiles(attention_shared, query_tile, key_tile, head_dim);

    const int batch = static_cast<int>(blockIdx.y) / heads, head = static_cast<int>(blockIdx.y) % heads;
    const int first_query = static_cast<int>(blockIdx.x) * query_tile;
    const int rows = min(query_tile, queries - first_query);
    const size_t channels = static_cast<size_t>(heads) * head_dim;
    const float* q_head = q + static_cast<size_t>(batch) * queries * channels + static_cast<size_t>(head) * head_dim;
    const float* k_head = k + static_cast<size_t>(batch) * keys * channels + static_cast<size_t>(head) * head_dim;
    const float* v_head = v + static_cast<size_t>(batch) * keys * channels + static_cast<size_t>(head) * head_dim;
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
    const int lane = tid % mf::WarpSize, warp = tid / mf::WarpSize, warps = threads / mf::WarpSize;

    for (int i = tid; i < rows * head_dim; i += threads)
    {
        const int row = i / head_dim, d = i - row * head_dim;
        t.queries[i] = q_head[static_cast<size_t>(first_query + row) * channels + d] * scale;
        t.accumulator[i] = 0.0f;
    }
    for (int row = tid; row < rows; row += threads)
    {
        t.row_max[row] = -INFINITY;
        t.row_sum[row] = 0.0f;
    }
    __syncthreads(); // with no keys the loop below has no barrier before the rows are written

    for (int first_key = 0; first_key < keys; first_key += key_tile)
    {
        const int cols = min(key_tile, keys - first_key);
        for (int i = tid; i < cols * head_dim; i += threads)
        {
            const int col = i / head_dim, d = i - col * head_dim;
            const size_t offset = static_cast<size_t>(first_key + col) * channels + d;
            t.keys[col * (head_dim + 1) + d] = k_head[offset];
            t.values[i] = v_head[offset];
        }
        for (int col = tid; col < key_tile; col += threads)
            t.key_valid[col] = col < cols && (mask_row == nullptr || mask_row[first_key + col] != 0);
        __syncthreads();

        for (int i = tid; i < rows * key_tile; i += threads)
        {
            const int row = i / key_tile, col = i - row * key_tile;
            float score = -INFINITY;
            if (t.key_valid[col])
            {
                const float* query = t.queries + row * head_dim;
                const float* key = t.keys + col * (head_dim + 1);
                score = 0.0f;
                for (int d = 0; d < head_dim; ++d) score = fmaf(query[d], key[d], score);
            }
            t.scores[i] = score;
        }
        __syncthreads();

        // Online softmax: one warp per row, one lane per key of the tile.
        for (int row = warp; row < rows; row += warps)
        {
            float* row_scores = t.scores + row * key_tile;
            const float score = lane < key_tile ? row_scores[lane] : -INFINITY;
            const float old_max = t.row_max[row];
            const float new_max = mf::MaxPropagatingNaN{}(mf::warp_reduce(score, mf::MaxPropagatingNaN{}), old_max);
            // Until some key is valid the max stays -inf: weights are 0 and the (zero) accumulator keeps its scale.
            const bool any_valid = new_max != -INFINITY;
            const float weight = any_valid ? expf(score - new_max) : 0.0f;
            const float sum = mf::warp_sum(weight);
            if (lane < key_tile) row_scores[lane] = weight;
            if (lane == 0)
            {
                const float rescale = any_valid ? expf(old_max - new_max) : 1.0f;
                t.rescale[row] = rescale;
                t.row_max[row] = new_max;
                t.row_sum[row] = t.row_sum[row] * rescale + sum;
            }
        }
        __syncthreads();

        for (int i = tid; i < rows * head_dim; i += threads)
        {
            const int row = i / head_dim, d = i - row * head_dim;
            const float* weights = t.scores + row * key_tile;
            float acc = t.accumulator[i] * t.rescale[row];
            for (int col = 0; col < cols; ++col) acc = fmaf(weights[col], t.values[col * head_dim + d], acc);
            t.accumulator[i] = acc;
        }
        __syncthreads();
    }

    float* out_head = out + static_cast<size_t>(batch) * queries * channels + static_cast<size_t>(head) * head_dim;
    for (int i = tid; i < rows * head_dim; i += threads)
    {
        const int row = i / head_dim, d = i - row * head_dim;
        const float sum = t.row_sum[row];
        out_head[static_cast<size_t>(first_query + row) * channels + d] = sum > 0.0f ? t.accumulator[i] / sum : 0.0f;
    }
}
MF_EXPORT_KERNEL(attention_f32)
