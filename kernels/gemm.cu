// Strided-batched f32 GEMM, C[b] = A[b] · B[b] (+ bias per column), for the cuda-emulated backend and as the cuda
// backend's fallback where cuBLAS is missing or cannot express a layout. Every operand is addressed through explicit
// element strides: A[i, k] at a + i·a_row + k·a_col, B[k, j] at b + k·b_row + j·b_col, C[i, j] at c + i·c_row + j, so
// transposed operands and permuted views are read in place. The batch is blockIdx.z, with per-operand batch strides
// (0 for an operand shared by every batch item).
//
// Tiling and load order: implicit_gemm.cuh (64x64 tiles of C, 256 threads, operands loaded along their contiguous dim).
//
// Launch: grid (ceil(n/64), ceil(m/64), batch), block 256; no dynamic shared memory.
#include "implicit_gemm.cuh"

extern "C" __global__ void __launch_bounds__(256)
    gemm_f32(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
             const float* __restrict__ bias, int m, int n, int k, long long a_row, long long a_col, long long b_row,
             long long b_col, long long c_row, long long a_batch, long long b_batch, long long c_batch)
{
    using namespace mf::implicit_gemm;
    const int row0 = static_cast<int>(blockIdx.y) * TileM, col0 = static_cast<int>(blockIdx.x) * TileN;
    a += static_cast<long long>(blockIdx.z) * a_batch;
    b += static_cast<long long>(blockIdx.z) * b_batch;
    c += static_cast<long long>(blockIdx.z) * c_batch;
    // Load along k when k is A's contiguous dim (along j for B when j is B's), else along the other dim.
    const bool a_along_k = a_col == 1, b_along_j = b_col == 1 || b_row != 1;
    mf::implicit_gemm_tile(
        m, n, k, row0, col0, [=](int i, int kk) { return a[i * a_row + kk * a_col]; },
        [=](int kk, int j) { return b[kk * b_row + j * b_col]; },
        [=](int i, int j, float value) { c[i * c_row + j] = bias != nullptr ? value + bias[j] : value; }, a_along_k,
        b_along_j);
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
