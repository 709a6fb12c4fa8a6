// Tensor-core tiles for kernels/*.cu: 16×16×16 products of __half or __nv_bfloat16 operands accumulated in f32, one
// warp at a time, through nvcuda::wmma (<mma.h>). nvcc turns them into HMMA instructions (sm_80 and newer: the
// fatbins' targets, and the first with bf16 tensor cores); the CPU emulation implements the same API as warp
// collectives (kernels/emu/mma_emu.h). Kernels use only the names below, so the one tile shape and the f32 accumulator
// are chosen here.
//
// Every call is warp-wide: all 32 lanes of the warp must make it with the same arguments. Tile pointers must be 32-byte
// aligned and leading dimensions (in elements) multiples of 16 bytes. Which lane holds which element of a fragment is
// unspecified: move tiles between fragments of different kinds through memory (store, then load), never lane by lane.
#pragma once

#include <mma.h>

#include "common.cuh"

namespace mf::tc
{
/// Rows, columns and depth of one tensor-core product.
constexpr int Tile = 16;

/// Left operand (16 rows × 16 depth) read from a row-major tile.
template <class T>
using RowMajorA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, Tile, Tile, Tile, T, nvcuda::wmma::row_major>;

/// Right operand (16 depth × 16 columns) read from a row-major tile: element (k, n) at k·ldm + n.
template <class T>
using RowMajorB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, Tile, Tile, Tile, T, nvcuda::wmma::row_major>;

/// Right operand read from a column-major tile, element (k, n) at n·ldm + k: the transpose of a row-major tile, e.g.
/// Kᵀ from keys stored one row per key.
template <class T>
using ColumnMajorB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, Tile, Tile, Tile, T, nvcuda::wmma::col_major>;

/// 16×16 f32 accumulator.
using Accumulator = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, Tile, Tile, Tile, float>;

template <class Fragment, class T>
static __device__ __forceinline__ void load(Fragment& fragment, const T* tile, int ldm)
{
    nvcuda::wmma::load_matrix_sync(fragment, tile, static_cast<unsigned>(ldm));
}

static __device__ __forceinline__ void zero(Accumulator& accumulator) { nvcuda::wmma::fill_fragment(accumulator, 0.0f); }

/// Reads a row-major f32 tile into the accumulator.
static __device__ __forceinline__ void load(Accumulator& accumulator, const float* tile, int ldm)
{
    nvcuda::wmma::load_matrix_sync(accumulator, tile, static_cast<unsigned>(ldm), nvcuda::wmma::mem_row_major);
}

/// Writes the accumulator as a row-major f32 tile.
static __device__ __forceinline__ void store(float* tile, const Accumulator& accumulator, int ldm)
{
    nvcuda::wmma::store_matrix_sync(tile, accumulator, static_cast<unsigned>(ldm), nvcuda::wmma::mem_row_major);
}

/// accumulator += a·b.
template <class A, class B>
static __device__ __forceinline__ void multiply_add(Accumulator& accumulator, const A& a, const B& b)
{
    nvcuda::wmma::mma_sync(accumulator, a, b, accumulator);
}

/// `count` rounded up to a whole number of tiles.
static __host__ __device__ __forceinline__ constexpr int padded_to_tiles(int count)
{
    return (count + Tile - 1) / Tile * Tile;
}
} // namespace mf::tc
