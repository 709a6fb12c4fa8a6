// The tiled f32 GEMM core, C[i, j] = sum_k A[i, k] · B[k, j], whose operands are never materialised: the caller
// supplies A and B element loaders and an epilogue that stores C. gemm.cu loads strided (possibly transposed) matrices
// through it; the convolution kernels (conv2d.cu, conv1d.cu, conv_transpose1d.cu) load the weight and gather the input
// through the convolution's index map (padding as 0, any fused input activation applied), so there is no im2col buffer,
// and fuse bias and residual into the store.
//
// Tiling: a 64x64 tile of C per block of 256 threads, K in steps of 16 through shared memory, each thread owning a 4x4
// grid of outputs strided by 16 rows and columns (conflict-free shared-memory reads). Each operand's tile is loaded along
// its contiguous dim, so global reads coalesce: A along k or along i, B along j or along k, uniform over the block.
// Every output is one thread's FMA chain over k in ascending order: deterministic, no atomics.
#pragma once

#include "common.cuh"

namespace mf
{
namespace implicit_gemm
{
constexpr int TileM = 64, TileN = 64, TileK = 16, Threads = 256, Micro = 4, Lanes = 16;
static_assert(TileM == Micro * Lanes && TileN == Micro * Lanes && Threads == Lanes * Lanes, "4x4 outputs per thread");
static_assert(TileM * TileK == Micro * Threads && TileK * TileN == Micro * Threads,
              "4 tile loads per thread and operand");
} // namespace implicit_gemm

/// Computes the m x n tile of C at (row0, col0) with blockDim.x == implicit_gemm::Threads. load_a(i, kk) and
/// load_b(kk, j) are called only for in-range indices (i < m, j < n, kk < k); store(i, j, value) once per in-range
/// output, by the thread that computed it. a_along_k / b_along_j choose each operand's load order (its contiguous
/// dim); the result does not depend on them. Every thread of the block must call it (it synchronises).
template <class LoadA, class LoadB, class Store>
static __device__ __forceinline__ void implicit_gemm_tile(int m, int n, int k, int row0, int col0, LoadA load_a,
                                                          LoadB load_b, Store store, bool a_along_k = true,
                                                          bool b_along_j = true)
{
    using namespace implicit_gemm;
    // +1 column of padding: the stores in the non-contiguous load order walk a column of the tile.
    __shared__ float gemm_a_tile[TileK][TileM + 1];
    __shared__ float gemm_b_tile[TileK][TileN + 1];

    const int tid = static_cast<int>(threadIdx.x), tx = tid % Lanes, ty = tid / Lanes;
    float acc[Micro][Micro] = {};
    for (int k0 = 0; k0 < k; k0 += TileK)
    {
#pragma unroll
        for (int r = 0; r < Micro; ++r)
        {
            const int e = tid + r * Threads;
            const int kk = a_along_k ? e % TileK : e / TileM, i = a_along_k ? e / TileK : e % TileM;
            const int gi = row0 + i, gk = k0 + kk;
            gemm_a_tile[kk][i] = gi < m && gk < k ? load_a(gi, gk) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < Micro; ++r)
        {
            const int e = tid + r * Threads;
            const int kk = b_along_j ? e / TileN : e % TileK, j = b_along_j ? e % TileN : e / TileK;
            const int gk = k0 + kk, gj = col0 + j;
            gemm_b_tile[kk][j] = gk < k && gj < n ? load_b(gk, gj) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TileK; ++kk)
        {
            float av[Micro], bv[Micro];
#pragma unroll
            for (int r = 0; r < Micro; ++r) av[r] = gemm_a_tile[kk][ty + r * Lanes];
#pragma unroll
            for (int s = 0; s < Micro; ++s) bv[s] = gemm_b_tile[kk][tx + s * Lanes];
#pragma unroll
            for (int r = 0; r < Micro; ++r)
#pragma unroll
                for (int s = 0; s < Micro; ++s) acc[r][s] = fmaf(av[r], bv[s], acc[r][s]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < Micro; ++r)
    {
        const int i = row0 + ty + r * Lanes;
#pragma unroll
        for (int s = 0; s < Micro; ++s)
        {
            const int j = col0 + tx + s * Lanes;
            if (i < m && j < n) store(i, j, acc[r][s]);
        }
    }
}

/// leaky_relu(v, slope) when fuse is set, else v; applied to the input as it is gathered (padding stays 0).
static __device__ __forceinline__ float input_activation(float v, int fuse_leaky, float slope)
{
    return fuse_leaky && v < 0.0f ? v * slope : v;
}
} // namespace mf
