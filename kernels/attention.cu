// Fused multi-head attention, flash style: out = softmax(Q·Kᵀ·scale + key mask)·V per (batch, head), never holding
// the N×M score matrix, and its gradient. Inputs are token-major: q [B, N, H·D], k and v [B, M, H·D] (head h owns
// channels [h·D, (h+1)·D)), an optional key padding mask [B, M] of int (nonzero = attend); out [B, N, H·D] likewise.
//
// Forward: one block per (query tile, batch·head). The block keeps its query tile (pre-scaled) and an f32 output
// accumulator in shared memory and walks the keys a tile at a time: stage K and V, compute the tile's scores, then one
// warp per query row folds them into the row's running max and sum (online softmax) and rescales the accumulator.
//
// Backward, with P = softmax(S), dP = dy·Vᵀ, δ = rowsum(dy ∘ o) and dS = P ∘ (dP − δ):
//   attention_query_gradient_f32: dq = scale · dS·K, one block per (query tile, batch·head), the forward's online
//     sweep with the unnormalised weights times (dP − δ) accumulated against K, divided by the row sum at the end.
//   attention_row_statistics_f32: per query row, log-sum-exp of the scaled scores and δ, into a [2][B·H][N] buffer.
//   attention_key_value_gradient_f32: dv = Pᵀ·dy and dk = scale · dSᵀ·Q, one block per (key tile, batch·head)
//     walking every query tile, P = exp(s − lse) exactly from the statistics.
// Each output element is owned by one block and every sum runs in a fixed order (sequential loops, warp butterflies):
// deterministic, no atomics. A row whose keys are all masked (or M = 0) has output zeros by definition, so zero
// gradients: its max stays -inf and its sum 0, its weights are 0, and its keys are never valid.
//
// Tile sizes are launch arguments, chosen by the host (CudaKernels/Attention.cs) so that each kernel's shared memory
// (carve_* below; the host computes the same sizes) fits: any head dim works, larger ones with smaller tiles.
//
// Launch: grid (tiles of the block's own tokens, B·H), block a multiple of 32 (one warp per query row at a time in the
// softmax steps), query and key tiles <= 32 (one lane per key), dynamic shared memory as the host computes.
//
// attention_f16 / attention_bf16 are the forward on tensor cores (kernels/tensor_core.cuh) for 16-bit q, k, v and out;
// see attention_tensor_core below. The gradient kernels are f32 only.
#include "common.cuh"
#include "tensor_core.cuh"

namespace
{
/// Shared-memory layout of a forward block, in floats (AttentionKernel.ForwardSharedFloats).
struct ForwardTiles
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

__device__ __forceinline__ ForwardTiles carve_forward(float* shared, int query_tile, int key_tile, int head_dim)
{
    ForwardTiles t;
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

/// Shared-memory layout of a query-gradient block (AttentionKernel.QueryGradientSharedFloats).
struct QueryGradientTiles
{
    float* queries;     // [query_tile][head_dim], multiplied by scale
    float* gradients;   // [query_tile][head_dim]: dy
    float* keys;        // [key_tile][head_dim + 1]
    float* values;      // [key_tile][head_dim + 1]
    float* accumulator; // [query_tile][head_dim]: Σ exp(s − running max)·(dP − δ)·K, rescaled as the max grows
    float* scores;      // [query_tile][key_tile]
    float* score_grads; // [query_tile][key_tile]: dP, then the unnormalised dS
    float* row_max;     // [query_tile]
    float* row_sum;     // [query_tile]
    float* rescale;     // [query_tile]
    float* delta;       // [query_tile]: rowsum(dy ∘ o)
    int* key_valid;     // [key_tile]
};

__device__ __forceinline__ QueryGradientTiles carve_query_gradient(float* shared, int query_tile, int key_tile, int head_dim)
{
    QueryGradientTiles t;
    t.queries = shared;
    t.gradients = t.queries + query_tile * head_dim;
    t.keys = t.gradients + query_tile * head_dim;
    t.values = t.keys + key_tile * (head_dim + 1);
    t.accumulator = t.values + key_tile * (head_dim + 1);
    t.scores = t.accumulator + query_tile * head_dim;
    t.score_grads = t.scores + query_tile * key_tile;
    t.row_max = t.score_grads + query_tile * key_tile;
    t.row_sum = t.row_max + query_tile;
    t.rescale = t.row_sum + query_tile;
    t.delta = t.rescale + query_tile;
    t.key_valid = reinterpret_cast<int*>(t.delta + query_tile);
    return t;
}

/// Shared-memory layout of a row-statistics block (AttentionKernel.RowStatisticsSharedFloats).
struct RowStatisticsTiles
{
    float* queries; // [query_tile][head_dim], multiplied by scale
    float* keys;    // [key_tile][head_dim + 1]
    float* scores;  // [query_tile][key_tile]
    float* row_max; // [query_tile]
    float* row_sum; // [query_tile]
    float* rescale; // [query_tile]
    int* key_valid; // [key_tile]
};

__device__ __forceinline__ RowStatisticsTiles carve_row_statistics(float* shared, int query_tile, int key_tile, int head_dim)
{
    RowStatisticsTiles t;
    t.queries = shared;
    t.keys = t.queries + query_tile * head_dim;
    t.scores = t.keys + key_tile * (head_dim + 1);
    t.row_max = t.scores + query_tile * key_tile;
    t.row_sum = t.row_max + query_tile;
    t.rescale = t.row_sum + query_tile;
    t.key_valid = reinterpret_cast<int*>(t.rescale + query_tile);
    return t;
}

/// Shared-memory layout of a key/value-gradient block (AttentionKernel.KeyValueGradientSharedFloats).
struct KeyValueGradientTiles
{
    float* keys;          // [key_tile][head_dim + 1], multiplied by scale
    float* values;        // [key_tile][head_dim + 1]
    float* key_grads;     // [key_tile][head_dim]: Σ_i dS[i][j]·q[i], times scale when written
    float* value_grads;   // [key_tile][head_dim]: Σ_i P[i][j]·dy[i]
    float* queries;       // [query_tile][head_dim]
    float* gradients;     // [query_tile][head_dim]: dy
    float* probabilities; // [query_tile][key_tile]
    float* score_grads;   // [query_tile][key_tile]: dS
    float* log_sum_exp;   // [query_tile]
    float* delta;         // [query_tile]
    int* key_valid;       // [key_tile]
};

__device__ __forceinline__ KeyValueGradientTiles carve_key_value_gradient(float* shared, int query_tile, int key_tile,
                                                                          int head_dim)
{
    KeyValueGradientTiles t;
    t.keys = shared;
    t.values = t.keys + key_tile * (head_dim + 1);
    t.key_grads = t.values + key_tile * (head_dim + 1);
    t.value_grads = t.key_grads + key_tile * head_dim;
    t.queries = t.value_grads + key_tile * head_dim;
    t.gradients = t.queries + query_tile * head_dim;
    t.probabilities = t.gradients + query_tile * head_dim;
    t.score_grads = t.probabilities + query_tile * key_tile;
    t.log_sum_exp = t.score_grads + query_tile * key_tile;
    t.delta = t.log_sum_exp + query_tile;
    t.key_valid = reinterpret_cast<int*>(t.delta + query_tile);
    return t;
}

/// The first element of head `head` of batch item `batch` in a token-major [B, tokens, heads·head_dim] tensor.
template <class T>
__device__ __forceinline__ T* head_rows(T* base, int batch, int head, int tokens, size_t channels, int head_dim)
{
    return base + static_cast<size_t>(batch) * tokens * channels + static_cast<size_t>(head) * head_dim;
}

/// Copies `rows` rows of head_dim floats (`channels` apart in global memory) times `scale` into shared memory, rows
/// `stride` apart.
__device__ __forceinline__ void stage_rows(float* shared, int stride, const float* rows_in, size_t channels, int rows,
                                           int head_dim, float scale)
{
    for (int i = static_cast<int>(threadIdx.x); i < rows * head_dim; i += static_cast<int>(blockDim.x))
    {
        const int row = i / head_dim, d = i - row * head_dim;
        shared[row * stride + d] = rows_in[static_cast<size_t>(row) * channels + d] * scale;
    }
}

/// Flags the keys [first, first + tile) that exist (below `keys`) and are not masked. Returns whether any key this
/// thread flagged is valid (for a block-wide vote on skipping a fully masked tile).
__device__ __forceinline__ int flag_valid_keys(int* key_valid, const int* mask_row, int first, int tile, int keys)
{
    int any_valid = 0;
    for (int col = static_cast<int>(threadIdx.x); col < tile; col += static_cast<int>(blockDim.x))
    {
        const int valid = first + col < keys && (mask_row == nullptr || mask_row[first + col] != 0);
        key_valid[col] = valid;
        any_valid |= valid;
    }
    return any_valid;
}

/// dots[row][col] = Σ_d a[row][d]·b[col][d] for rows < `rows` and cols < `cols` (rows of dots `cols` apart; a and b
/// rows `a_stride`, `b_stride` apart); columns flagged 0 in `col_valid` get `invalid`.
__device__ __forceinline__ void tile_dots(float* dots, const float* a, int a_stride, const float* b, int b_stride,
                                          int rows, int cols, int head_dim, const int* col_valid, float invalid)
{
    for (int i = static_cast<int>(threadIdx.x); i < rows * cols; i += static_cast<int>(blockDim.x))
    {
        const int row = i / cols, col = i - row * cols;
        float dot = invalid;
        if (col_valid[col])
        {
            const float* x = a + row * a_stride;
            const float* y = b + col * b_stride;
            dot = 0.0f;
            for (int d = 0; d < head_dim; ++d) dot = fmaf(x[d], y[d], dot);
        }
        dots[i] = dot;
    }
}

/// accumulator[row][d] = accumulator[row][d]·rescale[row] (rescale may be null: 1) + Σ_c weights(row, c)·rows_in[c][d]
/// over c < `count`, where weights(row, c) = weights[row·w_row + c·w_col] and rows_in rows are `in_stride` apart.
__device__ __forceinline__ void accumulate_rows(float* accumulator, int rows, int head_dim, const float* rescale,
                                                const float* weights, int w_row, int w_col, const float* rows_in,
                                                int in_stride, int count)
{
    for (int i = static_cast<int>(threadIdx.x); i < rows * head_dim; i += static_cast<int>(blockDim.x))
    {
        const int row = i / head_dim, d = i - row * head_dim;
        const float* w = weights + row * w_row;
        float acc = rescale != nullptr ? accumulator[i] * rescale[row] : accumulator[i];
        for (int c = 0; c < count; ++c) acc = fmaf(w[c * w_col], rows_in[c * in_stride + d], acc);
        accumulator[i] = acc;
    }
}

/// One warp's online-softmax step for one query row, one lane per key of the tile: folds `score` into the row's running
/// max and sum and returns exp(score − new max), or 0 while every key so far is masked (the max is still -inf). Lane 0
/// leaves in `rescale` the factor exp(old max − new max) that earlier sums must be multiplied by.
__device__ __forceinline__ float online_softmax_step(float score, float* row_max, float* row_sum, float* rescale, int lane)
{
    const float old_max = *row_max;
    const float new_max = mf::MaxPropagatingNaN{}(mf::warp_reduce(score, mf::MaxPropagatingNaN{}), old_max);
    const bool any_valid = new_max != -INFINITY;
    const float weight = any_valid ? expf(score - new_max) : 0.0f;
    const float sum = mf::warp_sum(weight);
    if (lane == 0)
    {
        const float factor = any_valid ? expf(old_max - new_max) : 1.0f;
        *rescale = factor;
        *row_max = new_max;
        *row_sum = *row_sum * factor + sum;
    }
    return weight;
}

/// delta[row] = Σ_d o[row][d]·dy[row][d] for `rows` rows `channels` apart: one warp per row, lanes striding the head
/// dim, then a butterfly sum.
__device__ __forceinline__ void row_deltas(float* delta, const float* o, const float* dy, size_t channels, int rows,
                                           int head_dim)
{
    const int lane = static_cast<int>(threadIdx.x) % mf::WarpSize, warp = static_cast<int>(threadIdx.x) / mf::WarpSize;
    const int warps = static_cast<int>(blockDim.x) / mf::WarpSize;
    for (int row = warp; row < rows; row += warps)
    {
        const size_t offset = static_cast<size_t>(row) * channels;
        float sum = 0.0f;
        for (int d = lane; d < head_dim; d += mf::WarpSize) sum = fmaf(o[offset + d], dy[offset + d], sum);
        sum = mf::warp_sum(sum);
        if (lane == 0) delta[row] = sum;
    }
}

/// Running max -inf and sum 0 for `rows` rows.
__device__ __forceinline__ void reset_softmax(float* row_max, float* row_sum, int rows)
{
    for (int row = static_cast<int>(threadIdx.x); row < rows; row += static_cast<int>(blockDim.x))
    {
        row_max[row] = -INFINITY;
        row_sum[row] = 0.0f;
    }
}
} // namespace

extern "C" __global__ void attention_f32(const float* q, const float* k, const float* v, const int* key_mask, float* out,
                                         int queries, int keys, int heads, int head_dim, float scale, int query_tile,
                                         int key_tile)
{
    extern __shared__ float attention_shared[];
    const ForwardTiles t = carve_forward(attention_shared, query_tile, key_tile, head_dim);

    const int batch = static_cast<int>(blockIdx.y) / heads, head = static_cast<int>(blockIdx.y) % heads;
    const int first_query = static_cast<int>(blockIdx.x) * query_tile;
    const int rows = min(query_tile, queries - first_query);
    const size_t channels = static_cast<size_t>(heads) * head_dim;
    const float* q_head = head_rows(q, batch, head, queries, channels, head_dim);
    const float* k_head = head_rows(k, batch, head, keys, channels, head_dim);
    const float* v_head = head_rows(v, batch, head, keys, channels, head_dim);
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
    const int lane = tid % mf::WarpSize, warp = tid / mf::WarpSize, warps = threads / mf::WarpSize;

    stage_rows(t.queries, head_dim, q_head + static_cast<size_t>(first_query) * channels, channels, rows, head_dim, scale);
    for (int i = tid; i < rows * head_dim; i += threads) t.accumulator[i] = 0.0f;
    reset_softmax(t.row_max, t.row_sum, rows);
    __syncthreads(); // with no keys the loop below has no barrier before the rows are written

    for (int first_key = 0; first_key < keys; first_key += key_tile)
    {
        const int cols = min(key_tile, keys - first_key);
        stage_rows(t.keys, head_dim + 1, k_head + static_cast<size_t>(first_key) * channels, channels, cols, head_dim, 1.0f);
        stage_rows(t.values, head_dim, v_head + static_cast<size_t>(first_key) * channels, channels, cols, head_dim, 1.0f);
        flag_valid_keys(t.key_valid, mask_row, first_key, key_tile, keys);
        __syncthreads();

        tile_dots(t.scores, t.queries, head_dim, t.keys, head_dim + 1, rows, key_tile, head_dim, t.key_valid, -INFINITY);
        __syncthreads();

        // Online softmax: one warp per row, one lane per key of the tile.
        for (int row = warp; row < rows; row += warps)
        {
            float* row_scores = t.scores + row * key_tile;
            const float weight = online_softmax_step(lane < key_tile ? row_scores[lane] : -INFINITY, t.row_max + row,
                                                     t.row_sum + row, t.rescale + row, lane);
            if (lane < key_tile) row_scores[lane] = weight;
        }
        __syncthreads();

        accumulate_rows(t.accumulator, rows, head_dim, t.rescale, t.scores, key_tile, 1, t.values, head_dim, cols);
        __syncthreads();
    }

    float* out_head = head_rows(out, batch, head, queries, channels, head_dim);
    for (int i = tid; i < rows * head_dim; i += threads)
    {
        const int row = i / head_dim, d = i - row * head_dim;
        const float sum = t.row_sum[row];
        out_head[static_cast<size_t>(first_query + row) * channels + d] = sum > 0.0f ? t.accumulator[i] / sum : 0.0f;
    }
}
MF_EXPORT_KERNEL(attention_f32)

extern "C" __global__ void attention_query_gradient_f32(const float* q, const float* k, const float* v, const float* o,
                                                        const float* dy, const int* key_mask, float* dq, int queries,
                                                        int keys, int heads, int head_dim, float scale, int query_tile,
                                                        int key_tile)
{
    extern __shared__ float attention_shared[];
    const QueryGradientTiles t = carve_query_gradient(attention_shared, query_tile, key_tile, head_dim);

    const int batch = static_cast<int>(blockIdx.y) / heads, head = static_cast<int>(blockIdx.y) % heads;
    const int first_query = static_cast<int>(blockIdx.x) * query_tile;
    const int rows = min(query_tile, queries - first_query);
    const size_t channels = static_cast<size_t>(heads) * head_dim;
    const size_t tile_offset = static_cast<size_t>(first_query) * channels;
    const float* k_head = head_rows(k, batch, head, keys, channels, head_dim);
    const float* v_head = head_rows(v, batch, head, keys, channels, head_dim);
    const float* dy_tile = head_rows(dy, batch, head, queries, channels, head_dim) + tile_offset;
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
    const int lane = tid % mf::WarpSize, warp = tid / mf::WarpSize, warps = threads / mf::WarpSize;

    stage_rows(t.queries, head_dim, head_rows(q, batch, head, queries, channels, head_dim) + tile_offset, channels, rows,
               head_dim, scale);
    stage_rows(t.gradients, head_dim, dy_tile, channels, rows, head_dim, 1.0f);
    for (int i = tid; i < rows * head_dim; i += threads) t.accumulator[i] = 0.0f;
    reset_softmax(t.row_max, t.row_sum, rows);
    row_deltas(t.delta, head_rows(o, batch, head, queries, channels, head_dim) + tile_offset, dy_tile, channels, rows,
               head_dim);
    __syncthreads();

    for (int first_key = 0; first_key < keys; first_key += key_tile)
    {
        const int cols = min(key_tile, keys - first_key);
        stage_rows(t.keys, head_dim + 1, k_head + static_cast<size_t>(first_key) * channels, channels, cols, head_dim, 1.0f);
        stage_rows(t.values, head_dim + 1, v_head + static_cast<size_t>(first_key) * channels, channels, cols, head_dim, 1.0f);
        flag_valid_keys(t.key_valid, mask_row, first_key, key_tile, keys);
        __syncthreads();

        tile_dots(t.scores, t.queries, head_dim, t.keys, head_dim + 1, rows, key_tile, head_dim, t.key_valid, -INFINITY);
        tile_dots(t.score_grads, t.gradients, head_dim, t.values, head_dim + 1, rows, key_tile, head_dim, t.key_valid, 0.0f);
        __syncthreads();

        // Online softmax as in the forward; dS is left unnormalised (the row sum divides dq once at the end).
        for (int row = warp; row < rows; row += warps)
        {
            const int at = row * key_tile + lane;
            const float weight = online_softmax_step(lane < key_tile ? t.scores[at] : -INFINITY, t.row_max + row,
                                                     t.row_sum + row, t.rescale + row, lane);
            if (lane < key_tile) t.score_grads[at] = weight * (t.score_grads[at] - t.delta[row]);
        }
        __syncthreads();

        accumulate_rows(t.accumulator, rows, head_dim, t.rescale, t.score_grads, key_tile, 1, t.keys, head_dim + 1, cols);
        __syncthreads();
    }

    float* dq_head = head_rows(dq, batch, head, queries, channels, head_dim);
    for (int i = tid; i < rows * head_dim; i += threads)
    {
        const int row = i / head_dim, d = i - row * head_dim;
        const float sum = t.row_sum[row];
        dq_head[static_cast<size_t>(first_query + row) * channels + d] = sum > 0.0f ? scale * t.accumulator[i] / sum : 0.0f;
    }
}
MF_EXPORT_KERNEL(attention_query_gradient_f32)

// statistics: [2][B·H][N] floats, log-sum-exp of the scaled scores (-inf for a row with every key masked), then δ.
extern "C" __global__ void attention_row_statistics_f32(const float* q, const float* k, const float* o, const float* dy,
                                                        const int* key_mask, float* statistics, int queries, int keys,
                                                        int heads, int head_dim, float scale, int query_tile,
                                                        int key_tile)
{
    extern __shared__ float attention_shared[];
    const RowStatisticsTiles t = carve_row_statistics(attention_shared, query_tile, key_tile, head_dim);

    const int batch = static_cast<int>(blockIdx.y) / heads, head = static_cast<int>(blockIdx.y) % heads;
    const int first_query = static_cast<int>(blockIdx.x) * query_tile;
    const int rows = min(query_tile, queries - first_query);
    const size_t channels = static_cast<size_t>(heads) * head_dim;
    const size_t tile_offset = static_cast<size_t>(first_query) * channels;
    const float* k_head = head_rows(k, batch, head, keys, channels, head_dim);
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);
    const int lane = tid % mf::WarpSize, warp = tid / mf::WarpSize, warps = threads / mf::WarpSize;
    const size_t row_index = static_cast<size_t>(blockIdx.y) * queries + first_query;
    float* log_sum_exp = statistics + row_index;
    float* delta = statistics + static_cast<size_t>(gridDim.y) * queries + row_index;

    stage_rows(t.queries, head_dim, head_rows(q, batch, head, queries, channels, head_dim) + tile_offset, channels, rows,
               head_dim, scale);
    reset_softmax(t.row_max, t.row_sum, rows);
    row_deltas(delta, head_rows(o, batch, head, queries, channels, head_dim) + tile_offset,
               head_rows(dy, batch, head, queries, channels, head_dim) + tile_offset, channels, rows, head_dim);
    __syncthreads();

    for (int first_key = 0; first_key < keys; first_key += key_tile)
    {
        const int cols = min(key_tile, keys - first_key);
        stage_rows(t.keys, head_dim + 1, k_head + static_cast<size_t>(first_key) * channels, channels, cols, head_dim, 1.0f);
        flag_valid_keys(t.key_valid, mask_row, first_key, key_tile, keys);
        __syncthreads();

        tile_dots(t.scores, t.queries, head_dim, t.keys, head_dim + 1, rows, key_tile, head_dim, t.key_valid, -INFINITY);
        __syncthreads();

        for (int row = warp; row < rows; row += warps)
            online_softmax_step(lane < key_tile ? t.scores[row * key_tile + lane] : -INFINITY, t.row_max + row,
                                t.row_sum + row, t.rescale + row, lane);
        __syncthreads();
    }

    for (int row = tid; row < rows; row += threads)
    {
        const float sum = t.row_sum[row];
        log_sum_exp[row] = sum > 0.0f ? t.row_max[row] + logf(sum) : -INFINITY;
    }
}
MF_EXPORT_KERNEL(attention_row_statistics_f32)

extern "C" __global__ void attention_key_value_gradient_f32(const float* q, const float* k, const float* v,
                                                            const float* dy, const int* key_mask,
                                                            const float* statistics, float* dk, float* dv, int queries,
                                                            int keys, int heads, int head_dim, float scale,
                                                            int query_tile, int key_tile)
{
    extern __shared__ float attention_shared[];
    const KeyValueGradientTiles t = carve_key_value_gradient(attention_shared, query_tile, key_tile, head_dim);

    const int batch = static_cast<int>(blockIdx.y) / heads, head = static_cast<int>(blockIdx.y) % heads;
    const int first_key = static_cast<int>(blockIdx.x) * key_tile;
    const int cols = min(key_tile, keys - first_key);
    const size_t channels = static_cast<size_t>(heads) * head_dim;
    const size_t tile_offset = static_cast<size_t>(first_key) * channels;
    const float* q_head = head_rows(q, batch, head, queries, channels, head_dim);
    const float* dy_head = head_rows(dy, batch, head, queries, channels, head_dim);
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const float* log_sum_exp = statistics + static_cast<size_t>(blockIdx.y) * queries;
    const float* delta = statistics + static_cast<size_t>(gridDim.y) * queries + static_cast<size_t>(blockIdx.y) * queries;
    const int tid = static_cast<int>(threadIdx.x), threads = static_cast<int>(blockDim.x);

    stage_rows(t.keys, head_dim + 1, head_rows(k, batch, head, keys, channels, head_dim) + tile_offset, channels, cols,
               head_dim, scale);
    stage_rows(t.values, head_dim + 1, head_rows(v, batch, head, keys, channels, head_dim) + tile_offset, channels, cols,
               head_dim, 1.0f);
    for (int i = tid; i < cols * head_dim; i += threads)
    {
        t.key_grads[i] = 0.0f;
        t.value_grads[i] = 0.0f;
    }
    flag_valid_keys(t.key_valid, mask_row, first_key, key_tile, keys);

    for (int first_query = 0; first_query < queries; first_query += query_tile)
    {
        const int rows = min(query_tile, queries - first_query);
        const size_t offset = static_cast<size_t>(first_query) * channels;
        stage_rows(t.queries, head_dim, q_head + offset, channels, rows, head_dim, 1.0f);
        stage_rows(t.gradients, head_dim, dy_head + offset, channels, rows, head_dim, 1.0f);
        for (int row = tid; row < rows; row += threads)
        {
            t.log_sum_exp[row] = log_sum_exp[first_query + row];
            t.delta[row] = delta[first_query + row];
        }
        __syncthreads();

        tile_dots(t.probabilities, t.queries, head_dim, t.keys, head_dim + 1, rows, key_tile, head_dim, t.key_valid, 0.0f);
        tile_dots(t.score_grads, t.gradients, head_dim, t.values, head_dim + 1, rows, key_tile, head_dim, t.key_valid, 0.0f);
        __syncthreads();

        // A valid key implies some valid key in the row, so its log-sum-exp is finite; masked keys keep probability 0.
        for (int i = tid; i < rows * key_tile; i += threads)
        {
            const int row = i / key_tile, col = i - row * key_tile;
            const float p = t.key_valid[col] ? expf(t.probabilities[i] - t.log_sum_exp[row]) : 0.0f;
            t.probabilities[i] = p;
            t.score_grads[i] = p * (t.score_grads[i] - t.delta[row]);
        }
        __syncthreads();

        // Key j is a row of the accumulators; its weights run down column j of P and dS.
        accumulate_rows(t.value_grads, cols, head_dim, nullptr, t.probabilities, 1, key_tile, t.gradients, head_dim, rows);
        accumulate_rows(t.key_grads, cols, head_dim, nullptr, t.score_grads, 1, key_tile, t.queries, head_dim, rows);
        __syncthreads();
    }

    float* dk_head = head_rows(dk, batch, head, keys, channels, head_dim) + tile_offset;
    float* dv_head = head_rows(dv, batch, head, keys, channels, head_dim) + tile_offset;
    for (int i = tid; i < cols * head_dim; i += threads)
    {
        const int col = i / head_dim, d = i - col * head_dim;
        dk_head[static_cast<size_t>(col) * channels + d] = scale * t.key_grads[i];
        dv_head[static_cast<size_t>(col) * channels + d] = t.value_grads[i];
    }
}
MF_EXPORT_KERNEL(attention_key_value_gradient_f32)

// ---- tensor cores: 16-bit inputs, f32 accumulation and softmax ---------------------------------------------------
//
// One block of four warps per (64 query rows, batch·head); warp w owns query rows [16·w, 16·w + 16) of the tile for
// the whole kernel. The head dim D is padded with zeros to Dp, a multiple of 16, inside the shared tiles (zero query
// and key columns add nothing to Q·Kᵀ, zero value columns are never written out), and key tiles of KeyTile (32 or 64)
// keys are walked one at a time:
//   1. all threads stage the K and V tiles (16-bit, keys past the end zero) and flag the valid keys; a tile whose keys
//      are all masked is skipped by the whole block (__syncthreads_or);
//   2. each warp computes its 16 × KeyTile scores S = Q·Kᵀ on tensor cores, f32 accumulation, into shared memory;
//   3. two lanes per query row fold the scaled scores into the row's running max and sum (registers, base-2 exponents
//      with scale·log2 e folded into score_scale), write the weights P rounded to the input type, and rescale the row
//      of the f32 output accumulator (shared memory: the fragment layout is unspecified, so rows are scaled there);
//   4. each warp adds P·V on tensor cores into its output rows.
// The row sum adds the rounded weights that P·V uses, so every output is a convex combination of values. Rows with no
// valid key keep max -inf and sum 0 and are written as zeros, as in attention_f32. Deterministic: fixed tile orders,
// no atomics.
//
// Launch: grid (ceil(N / 64), B·H), 128 threads, dynamic shared memory of tensor_core_attention_bytes (the host,
// AttentionKernel.TensorCoreSharedBytes, computes the same), key_tile 32 or 64.
namespace
{
constexpr int TensorCoreQueryTile = 64; // four warps of 16 rows

/// Shared-memory layout of a tensor-core attention block. Leading dimensions keep every 16×16 tile 32-byte aligned
/// with rows a multiple of 16 bytes apart, padded past the tile width so that neighbouring rows start on other banks.
template <class T>
struct TensorCoreTiles
{
    int padded_dim;       // Dp
    int tile_ld;          // Dp + 8: queries, keys, values
    int score_ld;         // key_tile + 4
    int weight_ld;        // key_tile + 8
    int output_ld;        // Dp + 4
    T* queries;           // [64][tile_ld]
    T* keys;              // [key_tile][tile_ld]
    T* values;            // [key_tile][tile_ld]
    float* scores;        // [64][score_ld]: Q·Kᵀ of the current key tile
    T* weights;           // [64][weight_ld]: P, rounded to T
    float* output;        // [64][output_ld]: unnormalised output, rescaled as the running max grows
    int* key_valid;       // [key_tile]
};

template <class T>
__device__ __forceinline__ TensorCoreTiles<T> carve_tensor_core(unsigned char* shared, int head_dim, int key_tile)
{
    TensorCoreTiles<T> t;
    t.padded_dim = mf::tc::padded_to_tiles(head_dim);
    t.tile_ld = t.padded_dim + 8;
    t.score_ld = key_tile + 4;
    t.weight_ld = key_tile + 8;
    t.output_ld = t.padded_dim + 4;
    t.queries = reinterpret_cast<T*>(shared);
    t.keys = t.queries + TensorCoreQueryTile * t.tile_ld;
    t.values = t.keys + key_tile * t.tile_ld;
    t.scores = reinterpret_cast<float*>(t.values + key_tile * t.tile_ld);
    t.weights = reinterpret_cast<T*>(t.scores + TensorCoreQueryTile * t.score_ld);
    t.output = reinterpret_cast<float*>(t.weights + TensorCoreQueryTile * t.weight_ld);
    t.key_valid = reinterpret_cast<int*>(t.output + TensorCoreQueryTile * t.output_ld);
    return t;
}

/// Copies `rows` of `head_dim` values (`channels` apart in global memory) into a [tile_rows][ld] shared tile; rows past
/// `rows` and columns past `head_dim` up to `padded_dim` become zeros.
template <class T>
__device__ __forceinline__ void stage_tensor_core_tile(T* tile, int ld, const T* rows_in, size_t channels, int rows,
                                                       int tile_rows, int head_dim, int padded_dim)
{
    const T zero = mf::from_float<T>(0.0f);
    for (int i = static_cast<int>(threadIdx.x); i < tile_rows * padded_dim; i += static_cast<int>(blockDim.x))
    {
        const int row = i / padded_dim, d = i - row * padded_dim;
        tile[row * ld + d] = row < rows && d < head_dim ? rows_in[static_cast<size_t>(row) * channels + d] : zero;
    }
}
} // namespace

template <class T, int KeyTile>
static __device__ void attention_tensor_core(const T* q, const T* k, const T* v, const int* key_mask, T* out,
                                             int queries, int keys, int heads, int head_dim, float score_scale)
{
    namespace tc = mf::tc;
    constexpr int ColumnBlocks = KeyTile / tc::Tile;
    extern __shared__ __align__(32) unsigned char attention_tensor_core_shared[];
    const TensorCoreTiles<T> t = carve_tensor_core<T>(attention_tensor_core_shared, head_dim, KeyTile);
    const int chunks = t.padded_dim / tc::Tile;

    const int batch = static_cast<int>(blockIdx.y) / heads, head = static_cast<int>(blockIdx.y) % heads;
    const int first_query = static_cast<int>(blockIdx.x) * TensorCoreQueryTile;
    const int rows = min(TensorCoreQueryTile, queries - first_query);
    const size_t channels = static_cast<size_t>(heads) * head_dim;
    const T* q_tile = head_rows(q, batch, head, queries, channels, head_dim) + static_cast<size_t>(first_query) * channels;
    const T* k_head = head_rows(k, batch, head, keys, channels, head_dim);
    const T* v_head = head_rows(v, batch, head, keys, channels, head_dim);
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const int tid = static_cast<int>(threadIdx.x), lane = tid % mf::WarpSize, warp = tid / mf::WarpSize;

    // Warp `warp` owns tile rows [first_row, first_row + 16); lanes 2r and 2r + 1 own row first_row + r's softmax state
    // (identical in both) and split its columns between them, even and odd.
    const int first_row = warp * tc::Tile, row = first_row + lane / 2, parity = lane % 2;
    float row_max = -INFINITY, row_sum = 0.0f;

    stage_tensor_core_tile(t.queries, t.tile_ld, q_tile, channels, rows, TensorCoreQueryTile, head_dim, t.padded_dim);
    for (int i = lane; i < tc::Tile * t.padded_dim; i += mf::WarpSize)
        t.output[(first_row + i / t.padded_dim) * t.output_ld + i % t.padded_dim] = 0.0f;
    __syncwarp(); // with no keys at all, the zeros are read back below without a block barrier

    for (int first_key = 0; first_key < keys; first_key += KeyTile)
    {
        const int cols = min(KeyTile, keys - first_key);
        const size_t key_offset = static_cast<size_t>(first_key) * channels;
        stage_tensor_core_tile(t.keys, t.tile_ld, k_head + key_offset, channels, cols, KeyTile, head_dim, t.padded_dim);
        stage_tensor_core_tile(t.values, t.tile_ld, v_head + key_offset, channels, cols, KeyTile, head_dim, t.padded_dim);
        const int any_valid = flag_valid_keys(t.key_valid, mask_row, first_key, KeyTile, keys);
        // Publishes the tiles (and, the first time, the query tile); a tile of masked keys changes no row.
        if (!__syncthreads_or(any_valid)) continue;

        // S = Q·Kᵀ for this warp's rows: each query chunk is loaded once and used for every column block.
        tc::Accumulator scores[ColumnBlocks];
        for (int j = 0; j < ColumnBlocks; ++j) tc::zero(scores[j]);
        for (int c = 0; c < chunks; ++c)
        {
            tc::RowMajorA<T> query;
            tc::load(query, t.queries + first_row * t.tile_ld + c * tc::Tile, t.tile_ld);
            for (int j = 0; j < ColumnBlocks; ++j)
            {
                tc::ColumnMajorB<T> key; // Kᵀ: key j·16 + n's row is column n
                tc::load(key, t.keys + j * tc::Tile * t.tile_ld + c * tc::Tile, t.tile_ld);
                tc::multiply_add(scores[j], query, key);
            }
        }
        for (int j = 0; j < ColumnBlocks; ++j)
            tc::store(t.scores + first_row * t.score_ld + j * tc::Tile, scores[j], t.score_ld);
        __syncwarp();

        // Online softmax of row `row` over this tile, in f32 with base-2 exponents.
        const float* row_scores = t.scores + row * t.score_ld;
        float tile_max = -INFINITY;
        for (int col = parity; col < KeyTile; col += 2)
            if (t.key_valid[col]) tile_max = mf::MaxPropagatingNaN{}(tile_max, row_scores[col] * score_scale);
        tile_max = mf::MaxPropagatingNaN{}(tile_max, __shfl_xor_sync(mf::FullWarp, tile_max, 1));
        const float new_max = mf::MaxPropagatingNaN{}(row_max, tile_max);
        // Until some key is valid the max stays -inf: weights are 0 and the (zero) accumulator keeps its scale.
        const bool any = new_max != -INFINITY;
        float tile_sum = 0.0f;
        for (int col = parity; col < KeyTile; col += 2)
        {
            const T weight = mf::from_float<T>(t.key_valid[col] && any ? exp2f(row_scores[col] * score_scale - new_max)
                                                                       : 0.0f);
            t.weights[row * t.weight_ld + col] = weight;
            tile_sum += mf::to_float(weight);
        }
        tile_sum += __shfl_xor_sync(mf::FullWarp, tile_sum, 1);
        const float rescale = any ? exp2f(row_max - new_max) : 1.0f;
        row_max = new_max;
        row_sum = row_sum * rescale + tile_sum;
        float* output_row = t.output + row * t.output_ld;
        for (int d = parity; d < t.padded_dim; d += 2) output_row[d] *= rescale;
        __syncwarp();

        // Output rows += P·V, one output chunk of 16 columns at a time.
        tc::RowMajorA<T> weights[ColumnBlocks];
        for (int j = 0; j < ColumnBlocks; ++j)
            tc::load(weights[j], t.weights + first_row * t.weight_ld + j * tc::Tile, t.weight_ld);
        for (int c = 0; c < chunks; ++c)
        {
            tc::Accumulator output;
            float* output_tile = t.output + first_row * t.output_ld + c * tc::Tile;
            tc::load(output, output_tile, t.output_ld);
            for (int j = 0; j < ColumnBlocks; ++j)
            {
                tc::RowMajorB<T> value;
                tc::load(value, t.values + j * tc::Tile * t.tile_ld + c * tc::Tile, t.tile_ld);
                tc::multiply_add(output, weights[j], value);
            }
            tc::store(output_tile, output, t.output_ld);
        }
        __syncthreads(); // the next key tile overwrites keys and values; the output rows are complete for the warp
    }

    // One row at a time across the warp, so that consecutive lanes write consecutive channels.
    const float inverse_sum = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;
    T* out_rows = head_rows(out, batch, head, queries, channels, head_dim) + static_cast<size_t>(first_query) * channels;
    for (int r = 0; r < tc::Tile; ++r)
    {
        const float scale = __shfl_sync(mf::FullWarp, inverse_sum, 2 * r);
        if (first_row + r >= rows) continue;
        const float* output_row = t.output + (first_row + r) * t.output_ld;
        for (int d = lane; d < head_dim; d += mf::WarpSize)
            out_rows[static_cast<size_t>(first_row + r) * channels + d] = mf::from_float<T>(output_row[d] * scale);
    }
}

/// Picks the instantiation for the launch's key tile (a compile-time bound: the fragment arrays stay in registers).
template <class T>
static __device__ void attention_tensor_core_launch(const T* q, const T* k, const T* v, const int* key_mask, T* out,
                                                    int queries, int keys, int heads, int head_dim, float score_scale,
                                                    int key_tile)
{
    if (key_tile == 64)
        attention_tensor_core<T, 64>(q, k, v, key_mask, out, queries, keys, heads, head_dim, score_scale);
    else
        attention_tensor_core<T, 32>(q, k, v, key_mask, out, queries, keys, heads, head_dim, score_scale);
}

/// q, k, v, out are f16; score_scale = scale · log2(e); key_tile is 32 or 64.
extern "C" __global__ void attention_f16(const __half* q, const __half* k, const __half* v, const int* key_mask,
                                         __half* out, int queries, int keys, int heads, int head_dim, float score_scale,
                                         int key_tile)
{
    attention_tensor_core_launch(q, k, v, key_mask, out, queries, keys, heads, head_dim, score_scale, key_tile);
}
MF_EXPORT_KERNEL(attention_f16)

/// As attention_f16 for bf16 q, k, v, out.
extern "C" __global__ void attention_bf16(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                          const int* key_mask, __nv_bfloat16* out, int queries, int keys, int heads,
                                          int head_dim, float score_scale, int key_tile)
{
    attention_tensor_core_launch(q, k, v, key_mask, out, queries, keys, heads, head_dim, score_scale, key_tile);
}
MF_EXPORT_KERNEL(attention_bf16)
