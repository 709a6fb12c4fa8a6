// Strided-batched f32 GEMM, C[b] = A[b] · B[b] (+ bias per column), for the cuda-emulated backend and as the cuda
// backend's fallback where cuBLAS is missing or cannot express a layout. Every operand is addressed through explicit
// element strides: A[i, k] at a + i·a_row + k·a_col, B[k, j] at b + k·b_row + j·b_col, C[i, j] at c + i·c_row + j, so
// transposed operands and permuted views are read in place. The batch is blockIdx.z, with per-operand batch strides
// (0 for an operand shared by every batch item).
//
// Tiling: a 64x64 tile of C per block of 256 threads, K in steps of 16 through shared memory; each thread owns a 4x4
// grid of outputs strided by 16 rows and 16 columns, so shared-memory reads of a warp hit distinct banks or broadcast.
// Tiles are loaded along whichever of A's (B's) dims is contiguous, so global reads coalesce for transposed operands too.
// Every output is one thread's FMA chain over k in ascending order: deterministic, no atomics.
//
// Launch: grid (ceil(n/64), ceil(m/64), batch), block 256; no dynamic shared memory.
#include "common.cuh"

namespace
{
constexpr int TileM = 64, TileN = 64, TileK = 16, Threads = 256, Micro = 4, Lanes = 16;
static_assert(TileM == Micro * Lanes && TileN == Micro * Lanes && Threads == Lanes * Lanes, "4x4 outputs per thread");
static_assert(TileM * TileK == Micro * Threads && TileK * TileN == Micro * Threads,
              "4 tile loads per thread and operand");
} // namespace

extern "C" __global__ void __launch_bounds__(256)
    gemm_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
             const float* __restrict__ bias, int m, int n, int k, long long a_row, long long a_col, long long b_row,
             long long b_col, long long c_row, long long a_batch, long long b_batch, long long c_batch)
{
    // +1 column of padding: the transposed-order stores below walk a column of the tile.
    __shared__ float a_tile[TileK][TileM + 1];
    __shared__ float b_tile[TileK][TileN + 1];

    const int tid = static_cast<int>(threadIdx.x), tx = tid % Lanes, ty = tid / Lanes;
    const int row0 = static_cast<int>(blockIdx.y) * TileM, col0 = static_cast<int>(blockIdx.x) * TileN;
    a += static_cast<long long>(blockIdx.z) * a_batch;
    b += static_cast<long long>(blockIdx.z) * b_batch;
    c += static_cast<long long>(blockIdx.z) * c_batch;
    // Load order per operand: along k when k is A's contiguous dim (and along j for B when j is B's), else along the
    // other dim; uniform over the block.
    const bool a_along_k = a_col == 1, b_along_j = b_col == 1 || b_row != 1;

    float acc[Micro][Micro] = {};
    for (int k0 = 0; k0 < k; k0 += TileK)
    {
#pragma unroll
        for (int r = 0; r < Micro; ++r)
        {
            const int e = tid + r * Threads;
            const int kk = a_along_k ? e % TileK : e / TileM, i = a_along_k ? e / TileK : e % TileM;
            const int gi = row0 + i, gk = k0 + kk;
            a_tile[kk][i] = gi < m && gk < k ? a[gi * a_row + gk * a_col] : 0.0f;
        }
#pragma unroll
        for (int r = 0; r < Micro; ++r)
        {
            const int e = tid + r * Threads;
            const int kk = b_along_j ? e / TileN : e % TileK, j = b_along_j ? e % TileN : e / TileK;
            const int gk = k0 + kk, gj = col0 + j;
            b_tile[kk][j] = gk < k && gj < n ? b[gk * b_row + gj * b_col] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TileK; ++kk)
        {
            float av[Micro], bv[Micro];
#pragma unroll
            for (int r = 0; r < Micro; ++r) av[r] = a_tile[kk][ty + r * Lanes];
#pragma unroll
            for (int s = 0; s < Micro; ++s) bv[s] = b_tile[kk][tx + s * Lanes];
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
            if (i < m && j < n) c[i * c_row + j] = bias != nullptr ? acc[r][s] + bias[j] : acc[r][s];
        }
    }
}
MF_EXPORT_KERNEL(gemm_f32)

/// c[b, i, j] += bias[j] for b < batch, i < rows, j < cols (row stride c_row, batch stride c_batch): the epilogue of a
/// cuBLAS GEMM, which has no bias of its own.
extern "C" __global__ void bias_add_f32(float* __restrict__ c, const float* __restrict__ bias, int batch, int rows,
                                        int cols, long long c_row, long long c_batch)
{
    const unsigned long long per_batch = static_cast<unsigned long long>(rows) * cols;
    const unsigned long long count = per_batch * batch;
    for (unsigned long long e = mf::grid_first(); e < count; e += mf::grid_stride())
    {
        const unsigned long long item = e / per_batch, within = e - item * per_batch;
        const unsigned long long i = within / cols, j = within - i * cols;
        c[item * c_batch + i * c_row + j] += bias[j];
    }
}
MF_EXPORT_KERNEL(bias_add_f32)
