// Test-only kernels for the emulator's warp collectives (never in a fatbin).
#include "../../common.cuh"

/// Number of results emu_warp_collectives writes per thread.
constexpr int WarpResults = 16;

/// Each thread writes WarpResults values computed with every collective from v = in[t]; the C# test derives the
/// expected values from the CUDA/PTX definitions.
extern "C" __global__ void emu_warp_collectives(const int* in, int* out)
{
    const unsigned t = threadIdx.x, lane = t % 32;
    const int v = in[t];
    int* r = out + t * WarpResults;
    r[0] = __shfl_sync(mf::FullWarp, v, static_cast<int>((lane * 7 + 3) % 32));
    r[1] = __shfl_sync(mf::FullWarp, v, 5, 8);
    r[2] = __shfl_up_sync(mf::FullWarp, v, 3);
    r[3] = __shfl_up_sync(mf::FullWarp, v, 2, 16);
    r[4] = __shfl_down_sync(mf::FullWarp, v, 5);
    r[5] = __shfl_down_sync(mf::FullWarp, v, 1, 4);
    r[6] = __shfl_xor_sync(mf::FullWarp, v, 13);
    r[7] = __shfl_xor_sync(mf::FullWarp, v, 12, 8);
    r[8] = static_cast<int>(__ballot_sync(mf::FullWarp, v % 2 != 0));
    r[9] = __any_sync(mf::FullWarp, v > 1000);
    r[10] = __all_sync(mf::FullWarp, v >= 0);
    r[11] = static_cast<int>(__activemask());
    // Half a warp: only lanes 0-15 take part.
    r[12] = lane < 16 ? __shfl_xor_sync(0x0000ffffu, v, 1) : -1;
    r[13] = lane < 16 ? static_cast<int>(__ballot_sync(0x0000ffffu, v % 3 == 0)) : -1;
    // A float and a 16-byte value travel intact.
    r[14] = static_cast<int>(__shfl_down_sync(mf::FullWarp, static_cast<float>(v) + 0.5f, 1) * 2.0f);
    const int4 quad = __shfl_sync(mf::FullWarp, make_int4(v, v + 1, v + 2, v + 3), 31 - static_cast<int>(lane));
    __syncwarp();
    r[15] = quad.x + quad.y + quad.z + quad.w;
}
MF_EXPORT_KERNEL(emu_warp_collectives)

/// out[b] = sum of in[b * blockDim.x .. + blockDim.x) through mf::block_sum (warp shuffles + shared memory).
extern "C" __global__ void emu_block_sum(const float* in, float* out)
{
    __shared__ float scratch[32];
    const float sum = mf::block_sum(in[blockIdx.x * blockDim.x + threadIdx.x], scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = sum;
}
MF_EXPORT_KERNEL(emu_block_sum)
