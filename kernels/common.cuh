// Shared by every kernels/*.cu: the 16-bit float types, kernel registration, block-wide reductions and strided
// indexing.
// Compiles under nvcc and under the CPU emulation (kernels/emu/cuda_emu.h, force-included there).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#if defined(__CUDACC__)
// Registration exists for the emulator only; a real GPU finds kernels by name with cuModuleGetFunction.
#define MF_EXPORT_KERNEL(name)
/// Launches a kernel from C++ host code on either side (the project itself launches from C#).
#define MF_LAUNCH(kernel, grid, block, shared_bytes, ...) \
    (kernel<<<(grid), (block), (shared_bytes)>>>(__VA_ARGS__), static_cast<int>(cudaGetLastError()))
#else
#define MF_LAUNCH(kernel, grid, block, shared_bytes, ...) \
    ::mf_emu::launch(#kernel, &kernel, (grid), (block), (shared_bytes), __VA_ARGS__)
#endif

namespace mf
{
constexpr unsigned FullWarp = 0xffffffffu;
constexpr int WarpSize = 32; // a compile-time constant, unlike nvcc's warpSize, so loops over it unroll

/// Every lane receives `combine` folded over its warp; the butterfly order makes the result identical on all lanes.
template <class T, class Combine>
static __device__ __forceinline__ T warp_reduce(T value, Combine combine)
{
    for (int offset = WarpSize / 2; offset > 0; offset /= 2)
        value = combine(value, __shfl_xor_sync(FullWarp, value, offset));
    return value;
}

/// Every thread of the block receives `combine` folded over the block, in a fixed order (deterministic, no atomics).
/// blockDim.x must be a multiple of 32 and `scratch` hold 32 values; `identity` fills the lanes past the last warp. The
/// trailing barrier makes `scratch` reusable at once.
template <class T, class Combine>
static __device__ __forceinline__ T block_reduce(T value, T* scratch, T identity, Combine combine)
{
    const unsigned lane = threadIdx.x % WarpSize, warp = threadIdx.x / WarpSize, warps = blockDim.x / WarpSize;
    value = warp_reduce(value, combine);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    value = warp_reduce(lane < warps ? scratch[lane] : identity, combine);
    __syncthreads();
    return value;
}

struct Add
{
    template <class T>
    __device__ __forceinline__ T operator()(T a, T b) const
    {
        return a + b;
    }
};

/// max that propagates NaN (fmaxf drops it): a row or group holding a NaN reduces to NaN, as in PyTorch.
struct MaxPropagatingNaN
{
    __device__ __forceinline__ float operator()(float a, float b) const { return a > b || a != a ? a : b; }
};

struct Min
{
    template <class T>
    __device__ __forceinline__ T operator()(T a, T b) const
    {
        return b < a ? b : a;
    }
};

static __device__ __forceinline__ float warp_sum(float value) { return warp_reduce(value, Add{}); }

/// Every thread of the block receives the block's sum (see block_reduce for the requirements).
static __device__ __forceinline__ float block_sum(float value, float* scratch)
{
    return block_reduce(value, scratch, 0.0f, Add{});
}

/// Largest rank of a strided iteration space after the host has coalesced it (CudaKernels/StridedIndex.cs).
constexpr int MaxRank = 6;

/// Element offset, in an operand with element `strides`, of position `flat` of the row-major iteration space `dims`
/// (`rank` of them, outer to inner). Index is unsigned or unsigned long long: 32-bit divisions where the space allows.
/// Unrolled over MaxRank with constant indices, so dims and strides stay in registers.
template <class Index>
static __device__ __forceinline__ long long strided_offset(Index flat, int rank, const int* dims,
                                                           const long long* strides)
{
    long long offset = 0;
#pragma unroll
    for (int d = MaxRank - 1; d > 0; --d)
    {
        if (d < rank)
        {
            const Index extent = static_cast<Index>(dims[d]);
            const Index quotient = flat / extent;
            offset += static_cast<long long>(flat - quotient * extent) * strides[d];
            flat = quotient;
        }
    }
    return offset + static_cast<long long>(flat) * strides[0];
}

/// First index of the calling thread in a grid-stride loop, and the loop's stride, as 64-bit values.
static __device__ __forceinline__ unsigned long long grid_first()
{
    return static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
}
static __device__ __forceinline__ unsigned long long grid_stride()
{
    return static_cast<unsigned long long>(gridDim.x) * blockDim.x;
}

template <class T>
__device__ __forceinline__ float to_float(T value);
template <>
__device__ __forceinline__ float to_float<float>(float value)
{
    return value;
}
template <>
__device__ __forceinline__ float to_float<__half>(__half value)
{
    return __half2float(value);
}
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 value)
{
    return __bfloat162float(value);
}

template <class T>
__device__ __forceinline__ T from_float(float value);
template <>
__device__ __forceinline__ float from_float<float>(float value)
{
    return value;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float value)
{
    return __float2half(value);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float value)
{
    return __float2bfloat16(value);
}
} // namespace mf
