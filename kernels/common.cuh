// Shared by every kernels/*.cu: the 16-bit float types, kernel registration and block-wide reductions.
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

/// Every lane receives the sum over its warp; the butterfly order makes the result identical on all lanes.
static __device__ __forceinline__ float warp_sum(float value)
{
    for (int offset = WarpSize / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(FullWarp, value, offset);
    return value;
}

/// Every thread of the block receives the block's sum, in a fixed order (deterministic, no atomics). blockDim.x must
/// be a multiple of 32 and `scratch` hold 32 floats; the trailing barrier makes `scratch` reusable at once.
static __device__ __forceinline__ float block_sum(float value, float* scratch)
{
    const unsigned lane = threadIdx.x % WarpSize, warp = threadIdx.x / WarpSize, warps = blockDim.x / WarpSize;
    value = warp_sum(value);
    if (lane == 0) scratch[warp] = value;
    __syncthreads();
    value = warp_sum(lane < warps ? scratch[lane] : 0.0f);
    __syncthreads();
    return value;
}

template <class T>
__device__ __forceinline__ float to_float(T value);
template <>
__device__ __forceinline__ float to_float<float>(float value) { return value; }
template <>
__device__ __forceinline__ float to_float<__half>(__half value) { return __half2float(value); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 value) { return __bfloat162float(value); }

template <class T>
__device__ __forceinline__ T from_float(float value);
template <>
__device__ __forceinline__ float from_float<float>(float value) { return value; }
template <>
__device__ __forceinline__ __half from_float<__half>(float value) { return __float2half(value); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float value) { return __float2bfloat16(value); }
} // namespace mf
