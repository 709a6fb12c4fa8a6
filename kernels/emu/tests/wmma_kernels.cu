// Test-only kernels for the emulator's warp matrix functions (nvcuda::wmma, kernels/emu/mma_emu.h); never in a fatbin.
// Lines the C# tests expect in error messages carry a "site:" marker comment.
#include <mma.h>

#include "../../common.cuh"

namespace wmma = nvcuda::wmma;

namespace
{
constexpr int GemmThreads = 128;  // four warps
constexpr int BlockTile = 32;     // each block computes a 32×32 tile of the output, each warp a 16×16 quarter of it
constexpr int Pad = 16;           // keeps every fragment 32-byte aligned and ldm a multiple of 16 bytes

/// Leading dimension of a staged 32×16 (A) or 16×32 (B) tile in shared memory: the length of a stored row or column.
template <class Layout>
__host__ __device__ constexpr int staged_ldm(int rows, int columns)
{
    return (std::is_same_v<Layout, wmma::col_major> ? rows : columns) + Pad;
}
} // namespace

/// out = alpha·(A·B) + c0 for A [m][k] and B [k][n] (row-major in global memory) and c0 [m][n] f32; m and n multiples
/// of 32, k of 16. Each k step, all 128 threads stage a 32×16 tile of A and a 16×32 tile of B in shared memory in the
/// layouts LayoutA / LayoutB, then every warp multiplies its quarter. out is written row-major ([m][n]) or, with
/// OutColumnMajor, column-major ([n][m]). WithBarrier = false plants the bug of a missing __syncthreads between the
/// staging and load_matrix_sync.
template <class T, class LayoutA, class LayoutB, bool OutColumnMajor, bool WithBarrier>
static __device__ void wmma_gemm(const T* a, const T* b, const float* c0, float* out, int m, int n, int k, float alpha)
{
    // Dynamic shared memory (GemmSharedBytes): the emulator fills it with NaN for every block, so a read before the
    // staging shows.
    extern __shared__ __align__(32) unsigned char wmma_gemm_shared[];
    constexpr bool a_columns = std::is_same_v<LayoutA, wmma::col_major>, b_columns = std::is_same_v<LayoutB, wmma::col_major>;
    constexpr int lda = staged_ldm<LayoutA>(BlockTile, 16), ldb = staged_ldm<LayoutB>(16, BlockTile);
    T* a_tile = reinterpret_cast<T*>(wmma_gemm_shared);
    T* b_tile = a_tile + (a_columns ? 16 : BlockTile) * lda;

    const int tid = static_cast<int>(threadIdx.x), warp = tid / 32;
    const int block_row = static_cast<int>(blockIdx.y) * BlockTile, block_column = static_cast<int>(blockIdx.x) * BlockTile;
    const int warp_row = warp / 2 * 16, warp_column = warp % 2 * 16;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k0 = 0; k0 < k; k0 += 16)
    {
        for (int i = tid; i < BlockTile * 16; i += GemmThreads)
        {
            const int ar = i / 16, ac = i % 16; // A tile: 32 rows × 16 columns
            a_tile[a_columns ? ac * lda + ar : ar * lda + ac] = a[static_cast<size_t>(block_row + ar) * k + k0 + ac];
            const int br = i / BlockTile, bc = i % BlockTile; // B tile: 16 rows × 32 columns
            b_tile[b_columns ? bc * ldb + br : br * ldb + bc] = b[static_cast<size_t>(k0 + br) * n + block_column + bc];
        }
        if (WithBarrier) __syncthreads();
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, LayoutA> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> fb;
        wmma::load_matrix_sync(fa, a_tile + (a_columns ? warp_row : warp_row * lda), lda);
        wmma::load_matrix_sync(fb, b_tile + (b_columns ? warp_column * ldb : warp_column), ldb);
        wmma::mma_sync(acc, fa, fb, acc);
        __syncthreads(); // the next step overwrites the tiles
    }

    // Fragments of one type share their element mapping, so elementwise updates line up whatever the mapping is.
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
    const int row = block_row + warp_row, column = block_column + warp_column;
    wmma::load_matrix_sync(c, c0 + static_cast<size_t>(row) * n + column, static_cast<unsigned>(n), wmma::mem_row_major);
    for (int e = 0; e < acc.num_elements; ++e) acc.x[e] = alpha * acc.x[e] + c.x[e];
    if (OutColumnMajor)
        wmma::store_matrix_sync(out + static_cast<size_t>(column) * m + row, acc, static_cast<unsigned>(m),
                                wmma::mem_col_major);
    else
        wmma::store_matrix_sync(out + static_cast<size_t>(row) * n + column, acc, static_cast<unsigned>(n),
                                wmma::mem_row_major);
}

/// f16 operands: A staged row-major, B column-major, out row-major. Grid (n / 32, m / 32), 128 threads, 8 KiB of
/// dynamic shared memory (enough for every layout).
extern "C" __global__ void emu_wmma_gemm_f16(const __half* a, const __half* b, const float* c0, float* out, int m, int n,
                                             int k, float alpha)
{
    wmma_gemm<__half, wmma::row_major, wmma::col_major, false, true>(a, b, c0, out, m, n, k, alpha);
}
MF_EXPORT_KERNEL(emu_wmma_gemm_f16)

/// bf16 operands: A staged column-major, B row-major, out column-major ([n][m]).
extern "C" __global__ void emu_wmma_gemm_bf16(const __nv_bfloat16* a, const __nv_bfloat16* b, const float* c0,
                                              float* out, int m, int n, int k, float alpha)
{
    wmma_gemm<__nv_bfloat16, wmma::col_major, wmma::row_major, true, true>(a, b, c0, out, m, n, k, alpha);
}
MF_EXPORT_KERNEL(emu_wmma_gemm_bf16)

/// The planted bug: emu_wmma_gemm_f16 without the __syncthreads between staging and load_matrix_sync.
extern "C" __global__ void emu_wmma_gemm_f16_missing_barrier(const __half* a, const __half* b, const float* c0,
                                                             float* out, int m, int n, int k, float alpha)
{
    wmma_gemm<__half, wmma::row_major, wmma::col_major, false, false>(a, b, c0, out, m, n, k, alpha);
}
MF_EXPORT_KERNEL(emu_wmma_gemm_f16_missing_barrier)

/// Loads a 16×16 f16 tile with a leading dimension of 12 elements (24 bytes): CUDA requires multiples of 16 bytes.
extern "C" __global__ void emu_wmma_bad_ldm(const __half* a, float* out)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::load_matrix_sync(fa, a, 12); // site: bad-ldm
    out[threadIdx.x] = static_cast<float>(fa.x[0]);
}
MF_EXPORT_KERNEL(emu_wmma_bad_ldm)

/// Only lanes 0-15 reach mma_sync; the others have returned.
extern "C" __global__ void emu_wmma_half_warp(const __half* a, float* out)
{
    if (threadIdx.x % 32 >= 16) return;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(fa, __float2half(1.0f));
    wmma::fill_fragment(fb, __float2half(1.0f));
    wmma::fill_fragment(acc, 0.0f);
    wmma::mma_sync(acc, fa, fb, acc); // site: half-warp
    wmma::store_matrix_sync(out, acc, 16, wmma::mem_row_major);
    (void)a;
}
MF_EXPORT_KERNEL(emu_wmma_half_warp)

/// Lane 5 loads from another tile than the rest of its warp.
extern "C" __global__ void emu_wmma_lanes_disagree(const __half* a, float* out)
{
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
    wmma::load_matrix_sync(fb, a + (threadIdx.x % 32 == 5 ? 256 : 0), 16); // site: lanes-disagree
    out[threadIdx.x] = static_cast<float>(fb.x[0]);
}
MF_EXPORT_KERNEL(emu_wmma_lanes_disagree)
