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
//
// attention_f16 / attention_bf16 are the same algorithm on tensor cores (kernels/tensor_core.cuh) for 16-bit q, k, v
// and out; see attention_tensor_core below.
#include "common.cuh"
#include "tensor_core.cuh"

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
    const T* q_head = q + (static_cast<size_t>(batch) * queries + first_query) * channels + static_cast<size_t>(head) * head_dim;
    const T* k_head = k + static_cast<size_t>(batch) * keys * channels + static_cast<size_t>(head) * head_dim;
    const T* v_head = v + static_cast<size_t>(batch) * keys * channels + static_cast<size_t>(head) * head_dim;
    const int* mask_row = key_mask != nullptr ? key_mask + static_cast<size_t>(batch) * keys : nullptr;
    const int tid = static_cast<int>(threadIdx.x), lane = tid % mf::WarpSize, warp = tid / mf::WarpSize;

    // Warp `warp` owns tile rows [first_row, first_row + 16); lanes 2r and 2r + 1 own row first_row + r's softmax state
    // (identical in both) and split its columns between them, even and odd.
    const int first_row = warp * tc::Tile, row = first_row + lane / 2, parity = lane % 2;
    float row_max = -INFINITY, row_sum = 0.0f;

    stage_tensor_core_tile(t.queries, t.tile_ld, q_head, channels, rows, TensorCoreQueryTile, head_dim, t.padded_dim);
    for (int i = lane; i < tc::Tile * t.padded_dim; i += mf::WarpSize)
        t.output[(first_row + i / t.padded_dim) * t.output_ld + i % t.padded_dim] = 0.0f;
    __syncwarp(); // with no keys at all, the zeros are read back below without a block barrier

    for (int first_key = 0; first_key < keys; first_key += KeyTile)
    {
        const int cols = min(KeyTile, keys - first_key);
        const size_t key_offset = static_cast<size_t>(first_key) * channels;
        stage_tensor_core_tile(t.keys, t.tile_ld, k_head + key_offset, channels, cols, KeyTile, head_dim, t.padded_dim);
        stage_tensor_core_tile(t.values, t.tile_ld, v_head + key_offset, channels, cols, KeyTile, head_dim, t.padded_dim);
        int any_valid = 0;
        for (int col = tid; col < KeyTile; col += static_cast<int>(blockDim.x))
        {
            const int valid = col < cols && (mask_row == nullptr || mask_row[first_key + col] != 0);
            t.key_valid[col] = valid;
            any_valid |= valid;
        }
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
    T* out_rows = out + (static_cast<size_t>(batch) * queries + first_query) * channels + static_cast<size_t>(head) * head_dim;
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
