// The tiled f32 GEMM core of the convolution kernels (conv2d.cu, conv1d.cu, conv_transpose1d.cu): an implicit GEMM,
// C[i, j] = sum_k A[i, k] · B[k, j], whose operands are never materialised. The caller supplies A and B element
// loaders (the weight, and the input gathered through the convolution's index map with padding as 0 and any fused input
// activation applied) and an epilogue that stores C (bias and residual fused there); no im2col buffer.
//
// Tiling as kernels/gemm.cu: a 64x64 tile of C per block of 256 threads, K in steps of 16 through shared memory, each
// thread owning a 4x4 grid of outputs strided by 16 rows and columns (conflict-free shared-memory reads). A is loaded
// along k (the weight's contiguous dim in conv1d/conv2d), B along j (output positions: consecutive input addresses for
// stride 1). Every output is one thread's FMA chain over k in ascending order: deterministic, no atomics.
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
/// output, by the thread that computed it. Every thread of the block must call it (it synchronises).
template <class LoadA, class LoadB, class Store>
static __device__ __forceinline__ void implicit_gemm_tile(int m, int n, int k, int row0, int col0, LoadA load_a,
                                                          LoadB load_b, Store store)
{
    using namespace implicit_gemm;
    // +1 column of padding: the A stores walk a column of the tile.
    __shared__ float conv_a_tile[TileK][TileM + 1];
    __shared__ float conv_b_tile[TileK][TileN + 1];

    const int tid = static_cast<int>(threadIdx.x), tx = tid % Lanes, ty = tid / Lanes;
    float acc[Micro][Micro] = {};
    for (int k0 = 0; k0 < k; k0 += TileK)
    {
#pragma unroll
        for (int r = 0; r < Micro; ++r)
        {
            const int e = tid + r * Threads, kk = e % TileK, i = e / TileK;
            const int gi = row0 + i, gk = k0 + kk;
            conv_a_tile[kk][i] = gi < m && gk < k ? load_a(gi, gk) : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < Micro; ++r)
        {
            const int e = tid + r * Threads, kk = e / TileN, j = e % TileN;
            const int gk = k0 + kk, gj = col0 + j;
            conv_b_tile[kk][j] = gk < k && gj < n ? load_b(gk, gj) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TileK; ++kk)
        {
            float av[Micro], bv[Micro];
#pragma unroll
            for (int r = 0; r < Micro; ++r) av[r] = conv_a_tile[kk][ty + r * Lanes];
#pragma unroll
            for (int s = 0; s < Micro; ++s) bv[s] = conv_b_tile[kk][tx + s * Lanes];
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
