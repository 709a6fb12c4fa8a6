// CPU emulation of CUDA's warp matrix functions, nvcuda::wmma (<mma.h>), for the m16n16k16 shape with __half or
// __nv_bfloat16 operands and f32 accumulators. Included by cuda_emu.h; kernels include <mma.h> as under nvcc (the
// stand-in in kernels/emu/include resolves to this).
//
// A fragment is per-thread storage, as on a GPU: each lane holds 8 of the tile's 256 elements. Which lane holds which
// element is unspecified by CUDA, so kernels may only treat x[0 .. num_elements) uniformly (scale, convert, fill). The
// emulator deals element e of lane l to row-major position 32·e + l (row 2·e + l / 16, column l % 16): code that
// assumes some other mapping fails here rather than silently on one GPU generation.
//
// The *_sync calls are warp collectives (rendezvous of the warp's 32 fibers through mf_emu::warp_collective): every lane
// of the warp must reach the same call with the same pointer, leading dimension and layout, or the launch fails naming
// the line. A lane reads (load_matrix_sync) or writes (store_matrix_sync) its own elements when it arrives, before the
// rendezvous completes: memory another thread stages without a __syncthreads / __syncwarp in between is read too early
// under the reverse and random schedules, which shows as NaN. mma_sync computes D = A·B + C once every lane has
// arrived, each element as an fmaf chain over k = 0..15 starting from C (products of 16-bit floats are exact in f32),
// so results are deterministic. The pointer must be 32-byte aligned and ldm a multiple of 16 bytes, as CUDA requires.
#pragma once

namespace mf_emu::wmma_detail
{
constexpr int TileSize = 16;
constexpr int ElementsPerLane = TileSize * TileSize / 32;

/// Row and column of element `e` of lane `lane` (see the file comment).
inline int row_of(int e, int lane) { return (32 * e + lane) / TileSize; }
inline int column_of(int e, int lane) { return (32 * e + lane) % TileSize; }

template <class T>
struct identity
{
    using type = T;
};

template <class T>
constexpr bool is_operand_type = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

/// What a lane of load_matrix_sync / store_matrix_sync publishes: all lanes must agree on it.
struct MemoryOperands
{
    const void* pointer;
    unsigned ldm;
    bool column_major;
};

inline bool complete_memory(void* const* lanes, unsigned mask, char* error, size_t error_size)
{
    if (mask != 0xffffffffu)
    {
        snprintf(error, error_size, "needs all 32 lanes of the warp, got mask 0x%08x", mask);
        return false;
    }
    const auto& first = *static_cast<const MemoryOperands*>(lanes[0]);
    for (int lane = 1; lane < 32; ++lane)
    {
        const auto& other = *static_cast<const MemoryOperands*>(lanes[lane]);
        if (other.pointer != first.pointer || other.ldm != first.ldm || other.column_major != first.column_major)
        {
            snprintf(error, error_size,
                     "lanes disagree: lane 0 passes pointer %p, ldm %u, %s; lane %d passes %p, ldm %u, %s",
                     first.pointer, first.ldm, first.column_major ? "col-major" : "row-major", lane, other.pointer,
                     other.ldm, other.column_major ? "col-major" : "row-major");
            return false;
        }
    }
    return true;
}

/// Fails the calling lane unless `pointer` is 32-byte aligned and ldm is a multiple of 16 bytes (CUDA's requirements).
template <class T>
inline void check_memory(const char* what, const T* pointer, unsigned ldm, const char* file, int line)
{
    char message[160];
    if (reinterpret_cast<uintptr_t>(pointer) % 32 != 0)
    {
        snprintf(message, sizeof message, "pointer %p is not 32-byte aligned", static_cast<const void*>(pointer));
        fail_lane(what, message, file, line);
    }
    if (ldm * sizeof(T) % 16 != 0 || ldm < TileSize)
    {
        snprintf(message, sizeof message, "ldm %u is not a multiple of %u elements (16 bytes) of at least 16", ldm,
                 static_cast<unsigned>(16 / sizeof(T)));
        fail_lane(what, message, file, line);
    }
}

/// Element (row, column) of a 16×16 tile stored with leading dimension ldm.
inline size_t offset(int row, int column, unsigned ldm, bool column_major)
{
    return column_major ? static_cast<size_t>(column) * ldm + row : static_cast<size_t>(row) * ldm + column;
}

/// Reads this lane's elements, then meets the other lanes.
template <class T, class Stored>
inline void load(T* elements, const Stored* pointer, unsigned ldm, bool column_major, const char* file, int line)
{
    check_memory("wmma::load_matrix_sync", pointer, ldm, file, line);
    const int lane = static_cast<int>(active_lane());
    for (int e = 0; e < ElementsPerLane; ++e)
        elements[e] = pointer[offset(row_of(e, lane), column_of(e, lane), ldm, column_major)];
    MemoryOperands operands{pointer, ldm, column_major};
    warp_collective(0xffffffffu, &operands, &complete_memory, "wmma::load_matrix_sync", file, line);
}

/// What a lane of mma_sync publishes: its four fragments' elements.
template <class T>
struct MmaOperands
{
    float* d;
    const T* a;
    const T* b;
    const float* c;
};

/// D = A·B + C over the whole warp's fragments, in a fixed order.
template <class T>
bool complete_mma(void* const* lanes, unsigned mask, char* error, size_t error_size)
{
    if (mask != 0xffffffffu)
    {
        snprintf(error, error_size, "needs all 32 lanes of the warp, got mask 0x%08x", mask);
        return false;
    }
    float a[TileSize][TileSize], b[TileSize][TileSize], c[TileSize][TileSize];
    for (int lane = 0; lane < 32; ++lane)
    {
        const auto& operands = *static_cast<const MmaOperands<T>*>(lanes[lane]);
        for (int e = 0; e < ElementsPerLane; ++e)
        {
            const int row = row_of(e, lane), column = column_of(e, lane);
            a[row][column] = static_cast<float>(operands.a[e]);
            b[row][column] = static_cast<float>(operands.b[e]);
            c[row][column] = operands.c[e];
        }
    }
    // All of C is read before any lane's D is written: d and c are often the same fragment.
    for (int lane = 0; lane < 32; ++lane)
    {
        const auto& operands = *static_cast<const MmaOperands<T>*>(lanes[lane]);
        for (int e = 0; e < ElementsPerLane; ++e)
        {
            const int row = row_of(e, lane), column = column_of(e, lane);
            float sum = c[row][column];
            for (int k = 0; k < TileSize; ++k) sum = fmaf(a[row][k], b[k][column], sum);
            operands.d[e] = sum;
        }
    }
    return true;
}
} // namespace mf_emu::wmma_detail

namespace nvcuda::wmma
{
struct matrix_a
{
};
struct matrix_b
{
};
struct accumulator
{
};
struct row_major
{
};
struct col_major
{
};
enum layout_t
{
    mem_row_major,
    mem_col_major
};

/// One lane's share of a 16×16 tile: matrix_a (M×K) and matrix_b (K×N) of __half or __nv_bfloat16 with their memory
/// layout, or an f32 accumulator (M×N, layout given at load and store).
template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment
{
    static_assert(M == 16 && N == 16 && K == 16, "the CUDA emulator implements the m16n16k16 WMMA shape only");
    static_assert(std::is_same_v<Use, matrix_a> || std::is_same_v<Use, matrix_b> || std::is_same_v<Use, accumulator>,
                  "a fragment is a matrix_a, a matrix_b or an accumulator");
    static_assert(std::is_same_v<Use, accumulator>
                      ? std::is_same_v<T, float> && std::is_void_v<Layout>
                      : ::mf_emu::wmma_detail::is_operand_type<T> &&
                            (std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>),
                  "the CUDA emulator implements __half and __nv_bfloat16 matrix_a/matrix_b fragments with a row_major "
                  "or col_major layout, and float accumulators without one");

public:
    using element_type = T;
    enum
    {
        num_elements = ::mf_emu::wmma_detail::ElementsPerLane
    };
    T x[num_elements];
};

template <class Use, class T, class Layout>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f,
                          const typename ::mf_emu::wmma_detail::identity<T>::type& value)
{
    for (int e = 0; e < f.num_elements; ++e) f.x[e] = value;
}

template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* pointer, unsigned ldm,
                             MF_EMU_CALL_SITE)
{
    static_assert(!std::is_same_v<Use, accumulator>, "an accumulator load names its memory layout (layout_t)");
    ::mf_emu::wmma_detail::load(f.x, pointer, ldm, std::is_same_v<Layout, col_major>, file, line);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* pointer, unsigned ldm,
                             layout_t layout, MF_EMU_CALL_SITE)
{
    ::mf_emu::wmma_detail::load(f.x, pointer, ldm, layout == mem_col_major, file, line);
}

/// Writes this lane's elements, then meets the other lanes.
inline void store_matrix_sync(float* pointer, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm,
                              layout_t layout, MF_EMU_CALL_SITE)
{
    namespace detail = ::mf_emu::wmma_detail;
    detail::check_memory("wmma::store_matrix_sync", pointer, ldm, file, line);
    const int lane = static_cast<int>(::mf_emu::active_lane());
    const bool column_major = layout == mem_col_major;
    for (int e = 0; e < f.num_elements; ++e)
        pointer[detail::offset(detail::row_of(e, lane), detail::column_of(e, lane), ldm, column_major)] = f.x[e];
    detail::MemoryOperands operands{pointer, ldm, column_major};
    ::mf_emu::warp_collective(0xffffffffu, &operands, &detail::complete_memory, "wmma::store_matrix_sync", file, line);
}

template <class T, class LayoutA, class LayoutB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LayoutA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LayoutB>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c, MF_EMU_CALL_SITE)
{
    ::mf_emu::wmma_detail::MmaOperands<T> operands{d.x, a.x, b.x, c.x};
    ::mf_emu::warp_collective(0xffffffffu, &operands, &::mf_emu::wmma_detail::complete_mma<T>, "wmma::mma_sync", file,
                              line);
}
} // namespace nvcuda::wmma
