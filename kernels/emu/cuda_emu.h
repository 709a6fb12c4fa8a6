// CPU emulation of the CUDA execution model for kernels/*.cu.
//
// The emulator build compiles the very same kernel sources as C++ with this header force-included
// (`-x c++ -include kernels/emu/cuda_emu.h`). Every GPU thread of a block runs as a fiber on one OS thread;
// __syncthreads() and the warp collectives are rendezvous of the block's (warp's) fibers; blocks are spread over
// a pool of OS threads. See kernels/emu/README.md for the design and the rules kernels must follow.
#pragma once

#if defined(__CUDACC__) || defined(__CUDA_ARCH__)
#error "cuda_emu.h is the CPU emulation of CUDA; nvcc compiles kernels/*.cu natively without it"
#endif
#if __cplusplus < 201703L
#error "the CUDA emulation needs C++17 (-std=c++17), like the nvcc build"
#endif
#if !defined(__x86_64__)
#error "the CUDA emulator's fiber context switch is written for x86-64"
#endif
#if !defined(__FMA__) || !defined(__F16C__)
#error "compile the CUDA emulation with -march=x86-64-v3: fmaf must be an instruction and F16C converts halves"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <immintrin.h>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mf_emu.h"

/// Defined in emulation builds only; kernels test it where the emulation needs a different code path.
#define MF_CUDA_EMULATION 1

#define MF_EMU_API __attribute__((visibility("default")))
#define MF_EMU_HIDDEN __attribute__((visibility("hidden")))

// ---- CUDA keywords --------------------------------------------------------------------------------------------
// __restrict__ is a GCC/Clang keyword already; __noinline__ is left alone because libstdc++ spells
// __attribute__((__noinline__)) and a macro would break it.
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// One block runs at a time on an OS thread, so per-thread storage is per-block storage. `extern __shared__ T x[]`
// (dynamic shared memory) must be declared at block scope in a global-namespace function: the emulator build
// aliases every such name to one per-OS-thread buffer (kernels/emu/dynamic_shared.cmake). The default TLS model
// is kept on purpose: initial-exec would make dlopen of the library fail ("cannot allocate memory in static TLS
// block").
#define __shared__ thread_local

constexpr int warpSize = 32;

/// Largest dynamic shared memory a launch may ask for: the sm_90 opt-in limit per block (227 KiB).
#define MF_EMU_MAX_DYNAMIC_SHARED (227u * 1024u)

// ---- vector types ---------------------------------------------------------------------------------------------
struct uint3 { unsigned x, y, z; };
struct dim3
{
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned x, y; };
struct __align__(16) uint4 { unsigned x, y, z, w; };

inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// ---- the emulator runtime (kernels/emu/runtime.cpp) ------------------------------------------------------------
namespace mf_emu
{
enum class ShuffleMode : int { Index, Up, Down, Xor };
enum class VoteKind : int { Ballot, Any, All, SyncWarp };
enum class BarrierKind : int { Plain, Count, And, Or };

/// What one MF_EXPORT_KERNEL line registers.
struct KernelInfo
{
    const char* name;
    const char* module;                 // the library the kernel was compiled into (MF_EMU_MODULE)
    const char* source_file;
    void (*invoke)(void** params);      // unpacks cuLaunchKernel-style kernelParams and calls the kernel
    int param_count;
    const unsigned* param_sizes;
    unsigned char* (*dynamic_shared)(); // the calling OS thread's dynamic shared memory of that library
};

MF_EMU_API void register_kernel(const KernelInfo& info) noexcept;

MF_EMU_API void warp_shuffle(ShuffleMode mode, unsigned mask, const void* value, void* result, unsigned size,
                             int lane_or_delta, int width, const char* what, const char* file, int line);
MF_EMU_API unsigned warp_vote(VoteKind kind, unsigned mask, int predicate, const char* what, const char* file,
                              int line);
MF_EMU_API int block_barrier(BarrierKind kind, int predicate, const char* what, const char* file, int line);
MF_EMU_API unsigned active_mask();
[[noreturn]] MF_EMU_API void trap(const char* file, int line);

/// Completes a warp collective once every lane of its mask has arrived: `lanes[l]` is what lane l published (null
/// outside `mask`). Runs once, in the block scheduler, before any lane resumes; returns false with a message in
/// `error` to fail the launch.
using WarpCollective = bool (*)(void* const* lanes, unsigned mask, char* error, size_t error_size);

/// A warp operation whose result needs every lane's data at once (the WMMA calls, kernels/emu/mma_emu.h): the lanes
/// of `mask` must all reach it at the same line with the same `complete`; `operands` must stay valid until it returns.
MF_EMU_API void warp_collective(unsigned mask, void* operands, WarpCollective complete, const char* what,
                                const char* file, int line);
/// The calling thread's lane in its warp.
MF_EMU_API unsigned active_lane();
/// Ends the calling thread and fails its launch with "`what` at file:line: `message`".
[[noreturn]] MF_EMU_API void fail_lane(const char* what, const char* message, const char* file, int line);

/// Each library defines its own (generated from its sources by dynamic_shared.cmake).
MF_EMU_HIDDEN unsigned char* dynamic_shared_base();

namespace detail
{
// Set by the block scheduler before it resumes a fiber. __thread (not thread_local): no TLS wrapper calls.
extern MF_EMU_API __thread uint3 current_thread_idx;
extern MF_EMU_API __thread uint3 current_block_idx;
extern MF_EMU_API __thread dim3 current_block_dim;
extern MF_EMU_API __thread dim3 current_grid_dim;

template <class T>
inline T shuffle(ShuffleMode mode, unsigned mask, T value, int lane_or_delta, int width, const char* what,
                 const char* file, int line)
{
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 16, "shuffled values are at most 16 bytes");
    T result;
    warp_shuffle(mode, mask, &value, &result, sizeof(T), lane_or_delta, width, what, file, line);
    return result;
}

template <class T>
inline T read_param(void* param)
{
    static_assert(std::is_trivially_copyable_v<T>, "kernel parameters are passed by value as raw bytes");
    T value;
    memcpy(&value, param, sizeof(T)); // kernelParams entries need not be aligned for T
    return value;
}

template <auto Kernel>
struct KernelTraits;

template <class... Params, void (*Kernel)(Params...)>
struct KernelTraits<Kernel>
{
    static constexpr int param_count = sizeof...(Params);
    static constexpr unsigned param_sizes[sizeof...(Params) + 1] = {static_cast<unsigned>(sizeof(Params))..., 0};

    static void invoke(void** params) { invoke_with(params, std::index_sequence_for<Params...>{}); }

    template <size_t... I>
    static void invoke_with([[maybe_unused]] void** params, std::index_sequence<I...>)
    {
        Kernel(read_param<Params>(params[I])...);
    }
};

struct Registration
{
    explicit Registration(const KernelInfo& info) noexcept { register_kernel(info); }
};
} // namespace detail
} // namespace mf_emu

#ifndef MF_EMU_MODULE
#define MF_EMU_MODULE "melfusion_emu"
#endif

/// Registers an `extern "C" __global__` kernel with the emulator under its own name; expands to nothing under nvcc
/// (kernels/common.cuh). Launches pass `void** params` exactly like cuLaunchKernel's kernelParams.
#define MF_EXPORT_KERNEL(name)                                                                                     \
    static const ::mf_emu::detail::Registration mf_emu_registration_##name{::mf_emu::KernelInfo{                   \
        #name, MF_EMU_MODULE, __FILE__, &::mf_emu::detail::KernelTraits<&name>::invoke,                            \
        ::mf_emu::detail::KernelTraits<&name>::param_count, ::mf_emu::detail::KernelTraits<&name>::param_sizes,   \
        &::mf_emu::dynamic_shared_base}};

namespace mf_emu
{
/// Host-side launch for C++ callers (MF_LAUNCH in kernels/common.cuh): converts the arguments to the kernel's
/// parameter types, as <<<...>>> does, and passes them as kernelParams. Returns an mf_emu_status.
template <class... Params, class... Args>
int launch(const char* name, void (*)(Params...), dim3 grid, dim3 block, unsigned shared_bytes, Args&&... args)
{
    static_assert(sizeof...(Params) == sizeof...(Args), "wrong number of kernel arguments");
    std::tuple<std::decay_t<Params>...> values(std::forward<Args>(args)...);
    return std::apply(
        [&](auto&... value) {
            void* params[sizeof...(Params) + 1] = {static_cast<void*>(&value)...};
            return mf_emu_launch(name, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes, params);
        },
        values);
}
} // namespace mf_emu

// ---- built-in variables ----------------------------------------------------------------------------------------
#define threadIdx (static_cast<const uint3&>(::mf_emu::detail::current_thread_idx))
#define blockIdx (static_cast<const uint3&>(::mf_emu::detail::current_block_idx))
#define blockDim (static_cast<const dim3&>(::mf_emu::detail::current_block_dim))
#define gridDim (static_cast<const dim3&>(::mf_emu::detail::current_grid_dim))

// ---- synchronisation -------------------------------------------------------------------------------------------
// The source location arrives through default arguments evaluated at the call site, so a deadlock or a divergent
// barrier is reported with the line of the offending call.
#define MF_EMU_CALL_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()

inline void __syncthreads(MF_EMU_CALL_SITE)
{
    ::mf_emu::block_barrier(::mf_emu::BarrierKind::Plain, 0, "__syncthreads", file, line);
}
inline int __syncthreads_count(int predicate, MF_EMU_CALL_SITE)
{
    return ::mf_emu::block_barrier(::mf_emu::BarrierKind::Count, predicate, "__syncthreads_count", file, line);
}
inline int __syncthreads_and(int predicate, MF_EMU_CALL_SITE)
{
    return ::mf_emu::block_barrier(::mf_emu::BarrierKind::And, predicate, "__syncthreads_and", file, line);
}
inline int __syncthreads_or(int predicate, MF_EMU_CALL_SITE)
{
    return ::mf_emu::block_barrier(::mf_emu::BarrierKind::Or, predicate, "__syncthreads_or", file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, MF_EMU_CALL_SITE)
{
    ::mf_emu::warp_vote(::mf_emu::VoteKind::SyncWarp, mask, 0, "__syncwarp", file, line);
}

template <class T>
inline T __shfl_sync(unsigned mask, T value, int src_lane, int width = warpSize, MF_EMU_CALL_SITE)
{
    return ::mf_emu::detail::shuffle(::mf_emu::ShuffleMode::Index, mask, value, src_lane, width, "__shfl_sync", file,
                                     line);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize, MF_EMU_CALL_SITE)
{
    return ::mf_emu::detail::shuffle(::mf_emu::ShuffleMode::Up, mask, value, static_cast<int>(delta), width,
                                     "__shfl_up_sync", file, line);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize, MF_EMU_CALL_SITE)
{
    return ::mf_emu::detail::shuffle(::mf_emu::ShuffleMode::Down, mask, value, static_cast<int>(delta), width,
                                     "__shfl_down_sync", file, line);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize, MF_EMU_CALL_SITE)
{
    return ::mf_emu::detail::shuffle(::mf_emu::ShuffleMode::Xor, mask, value, lane_mask, width, "__shfl_xor_sync",
                                     file, line);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, MF_EMU_CALL_SITE)
{
    return ::mf_emu::warp_vote(::mf_emu::VoteKind::Ballot, mask, predicate, "__ballot_sync", file, line);
}
inline int __any_sync(unsigned mask, int predicate, MF_EMU_CALL_SITE)
{
    return static_cast<int>(::mf_emu::warp_vote(::mf_emu::VoteKind::Any, mask, predicate, "__any_sync", file, line));
}
inline int __all_sync(unsigned mask, int predicate, MF_EMU_CALL_SITE)
{
    return static_cast<int>(::mf_emu::warp_vote(::mf_emu::VoteKind::All, mask, predicate, "__all_sync", file, line));
}
/// The lanes of the calling warp that have not exited (the emulator has no notion of divergent-but-live lanes).
inline unsigned __activemask() { return ::mf_emu::active_mask(); }

/// Aborts the launch with an error naming the calling thread and line.
[[noreturn]] inline void __trap(MF_EMU_CALL_SITE) { ::mf_emu::trap(file, line); }

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- atomics ---------------------------------------------------------------------------------------------------
// Integer atomics only: the project's kernels are deterministic, so a float atomicAdd fails to compile here.
#define MF_EMU_ATOMIC_FETCH(name, builtin, T)                                                                       \
    inline T name(T* address, T value) { return builtin(address, value, __ATOMIC_SEQ_CST); }
MF_EMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, int)
MF_EMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, unsigned)
MF_EMU_ATOMIC_FETCH(atomicAdd, __atomic_fetch_add, unsigned long long)
MF_EMU_ATOMIC_FETCH(atomicSub, __atomic_fetch_sub, int)
MF_EMU_ATOMIC_FETCH(atomicSub, __atomic_fetch_sub, unsigned)
MF_EMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, int)
MF_EMU_ATOMIC_FETCH(atomicAnd, __atomic_fetch_and, unsigned)
MF_EMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, int)
MF_EMU_ATOMIC_FETCH(atomicOr, __atomic_fetch_or, unsigned)
MF_EMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, int)
MF_EMU_ATOMIC_FETCH(atomicXor, __atomic_fetch_xor, unsigned)
MF_EMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, int)
MF_EMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, unsigned)
MF_EMU_ATOMIC_FETCH(atomicExch, __atomic_exchange_n, unsigned long long)
#undef MF_EMU_ATOMIC_FETCH

template <class T>
inline T atomicCAS(T* address, T compare, T value)
{
    static_assert(std::is_integral_v<T>, "atomicCAS on integers only");
    __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare; // the old value, whether or not the swap happened
}

namespace mf_emu::detail
{
template <class T, class Better>
inline T atomic_update(T* address, T value, Better better)
{
    T old = __atomic_load_n(address, __ATOMIC_SEQ_CST);
    while (better(value, old) &&
           !__atomic_compare_exchange_n(address, &old, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    {
    }
    return old;
}
} // namespace mf_emu::detail

#define MF_EMU_ATOMIC_MINMAX(T)                                                                                    \
    inline T atomicMax(T* address, T value)                                                                        \
    {                                                                                                              \
        return ::mf_emu::detail::atomic_update(address, value, [](T a, T b) { return a > b; });                    \
    }                                                                                                              \
    inline T atomicMin(T* address, T value)                                                                        \
    {                                                                                                              \
        return ::mf_emu::detail::atomic_update(address, value, [](T a, T b) { return a < b; });                    \
    }
MF_EMU_ATOMIC_MINMAX(int)
MF_EMU_ATOMIC_MINMAX(unsigned)
MF_EMU_ATOMIC_MINMAX(long long)
MF_EMU_ATOMIC_MINMAX(unsigned long long)
#undef MF_EMU_ATOMIC_MINMAX

// ---- math intrinsics -------------------------------------------------------------------------------------------
// The fast GPU intrinsics (__expf, __fdividef, ...) map to the accurate libm functions: results differ from a GPU
// by a few ulp, which tests must tolerate anyway.
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline float __saturatef(float x) { return x != x ? 0.0f : fminf(fmaxf(x, 0.0f), 1.0f); }

inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float x) { unsigned u; memcpy(&u, &x, 4); return u; }
inline double __longlong_as_double(long long x) { double d; memcpy(&d, &x, 8); return d; }
inline long long __double_as_longlong(double x) { long long l; memcpy(&l, &x, 8); return l; }

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x)
{
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
inline unsigned __umulhi(unsigned x, unsigned y) { return static_cast<unsigned>((1ull * x * y) >> 32); }

#define MF_EMU_MINMAX(T)                                                                                           \
    inline T min(T a, T b) { return a < b ? a : b; }                                                               \
    inline T max(T a, T b) { return a > b ? a : b; }
MF_EMU_MINMAX(int)
MF_EMU_MINMAX(unsigned)
MF_EMU_MINMAX(long long)
MF_EMU_MINMAX(unsigned long long)
#undef MF_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

template <class T>
inline T __ldg(const T* address) { return *address; }

inline long long clock64() { return static_cast<long long>(__rdtsc()); }

// ---- 16-bit floats (cuda_fp16.h / cuda_bf16.h) -----------------------------------------------------------------
// Conversions round to nearest even like the CUDA intrinsics; F16C (part of x86-64-v3) does the half ones.
struct __half
{
    unsigned short __x;
    __half() = default;
    __half(float f) : __x(static_cast<unsigned short>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT))) {}
    operator float() const { return _cvtsh_ss(__x); }
};
struct __nv_bfloat16
{
    unsigned short __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(float f)
    {
        unsigned bits = __float_as_uint(f);
        __x = (bits & 0x7fffffffu) > 0x7f800000u
                  ? static_cast<unsigned short>(0x7fff) // NaN: the canonical NaN, as CUDA returns
                  : static_cast<unsigned short>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
    }
    operator float() const { return __uint_as_float(static_cast<unsigned>(__x) << 16); }
};
using half = __half;
using nv_bfloat16 = __nv_bfloat16;

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return static_cast<float>(h); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short bits) { __half h; h.__x = bits; return h; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return static_cast<float>(b); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { __nv_bfloat16 b; b.__x = bits; return b; }

// ---- warp matrix functions (<mma.h>) ------------------------------------------------------------------------------
#include "mma_emu.h"
