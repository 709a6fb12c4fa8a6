// Test-only kernels for the emulator's grid indexing, atomics and 16-bit conversions (never in a fatbin).
#include "../../common.cuh"

/// out[global linear thread id] = that id, written from 3D block and thread indices.
extern "C" __global__ void emu_linear_index(int* out)
{
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned id = block * (blockDim.x * blockDim.y * blockDim.z) + thread;
    out[id] = static_cast<int>(id);
}
MF_EXPORT_KERNEL(emu_linear_index)

/// counters[0] counts threads, counters[1] is the largest global thread id (blocks run on several OS threads).
extern "C" __global__ void emu_atomics(int* counters)
{
    atomicAdd(&counters[0], 1);
    atomicMax(&counters[1], static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x));
}
MF_EXPORT_KERNEL(emu_atomics)

/// Rounds each input to f16 and bf16 (raw bits out) and back to float.
extern "C" __global__ void emu_convert_16bit(const float* in, unsigned short* half_bits, unsigned short* bf16_bits,
                                             float* half_back, int count)
{
    const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= count) return;
    const __half h = __float2half(in[i]);
    half_bits[i] = __half_as_ushort(h);
    bf16_bits[i] = __bfloat16_as_ushort(__float2bfloat16(in[i]));
    half_back[i] = __half2float(h);
}
MF_EXPORT_KERNEL(emu_convert_16bit)

/// Host code: launches emu_linear_index through MF_LAUNCH (kernelParams built from typed arguments) and returns the
/// launch status; the C# test calls it to prove the C++ launch path.
extern "C" MF_EMU_API int mf_emu_test_launch_from_cpp(int* out, unsigned blocks, unsigned threads)
{
    return MF_LAUNCH(emu_linear_index, dim3(blocks), dim3(threads), 0, out);
}
