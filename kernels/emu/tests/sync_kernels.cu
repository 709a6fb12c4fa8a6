// Test-only kernels for the emulator's block barriers, shared memory and deadlock reports (never in a fatbin).
// Lines the C# tests expect in error messages carry a "site:" marker comment.
#include "../../common.cuh"

/// out[t] = in[blockDim.x - 1 - t] through static shared memory: needs the barrier between write and read.
extern "C" __global__ void emu_reverse_block(const int* in, int* out)
{
    __shared__ int values[1024];
    const unsigned t = threadIdx.x, n = blockDim.x;
    values[t] = in[blockIdx.x * n + t];
    __syncthreads();
    out[blockIdx.x * n + t] = values[n - 1 - t];
}
MF_EXPORT_KERNEL(emu_reverse_block)

/// out[t] = 2 * in[t - 1] (thread 0 reads its own) through dynamic shared memory.
template <bool WithBarrier>
static __device__ void previous_doubled(const float* in, float* out)
{
    extern __shared__ float doubled[];
    const unsigned t = threadIdx.x;
    doubled[t] = 2.0f * in[t];
    if (WithBarrier) __syncthreads();
    out[t] = doubled[t == 0 ? 0 : t - 1];
}

extern "C" __global__ void emu_previous_doubled(const float* in, float* out) { previous_doubled<true>(in, out); }
MF_EXPORT_KERNEL(emu_previous_doubled)

/// The planted bug: the same kernel without its __syncthreads. Threads running in index order still see their
/// neighbour's write; reverse or random order exposes the race as NaN (unwritten dynamic shared memory).
extern "C" __global__ void emu_previous_doubled_missing_barrier(const float* in, float* out)
{
    previous_doubled<false>(in, out);
}
MF_EXPORT_KERNEL(emu_previous_doubled_missing_barrier)

/// out[s·n + t] = in[s·n + (t + 32) % n] for steps s < `steps`: each step restages a tile that threads then read from
/// the next warp. The barrier at the end of a step keeps a warp from restaging while the next warp still reads.
template <bool WithBarrier>
static __device__ void next_warp_each_step(const float* in, float* out, int steps)
{
    extern __shared__ float staged[];
    const unsigned t = threadIdx.x, n = blockDim.x;
    for (int step = 0; step < steps; ++step)
    {
        staged[t] = in[step * n + t];
        __syncthreads();
        __syncwarp(); // warp operations around the read, as a tensor-core load and product would be
        out[step * n + t] = staged[(t + 32) % n];
        __syncwarp();
        if (WithBarrier) __syncthreads();
    }
}

extern "C" __global__ void emu_next_warp_each_step(const float* in, float* out, int steps)
{
    next_warp_each_step<true>(in, out, steps);
}
MF_EXPORT_KERNEL(emu_next_warp_each_step)

/// The planted bug: without the barrier at the end of a step. Every warp has the same synchronisation points, so
/// warps advancing in lockstep (in-order schedule) never see a restaged tile; warps running ahead of each other (reverse
/// and random schedules) read the next step's values.
extern "C" __global__ void emu_next_warp_each_step_missing_barrier(const float* in, float* out, int steps)
{
    next_warp_each_step<false>(in, out, steps);
}
MF_EXPORT_KERNEL(emu_next_warp_each_step_missing_barrier)

/// Copies dynamic shared memory as found at block start, then writes it: every block must see fresh NaN.
extern "C" __global__ void emu_read_fresh_shared(float* out)
{
    extern __shared__ float fresh[];
    const unsigned t = threadIdx.x;
    out[blockIdx.x * blockDim.x + t] = fresh[t];
    __syncthreads();
    fresh[t] = 1.0f;
}
MF_EXPORT_KERNEL(emu_read_fresh_shared)

/// out[0] = count, out[1] = and, out[2] = or of the predicate `in[t] != 0` (written by thread 0).
extern "C" __global__ void emu_barrier_votes(const int* in, int* out)
{
    const int predicate = in[threadIdx.x] != 0;
    const int count = __syncthreads_count(predicate);
    const int all = __syncthreads_and(predicate);
    const int any = __syncthreads_or(predicate);
    if (threadIdx.x == 0)
    {
        out[0] = count;
        out[1] = all;
        out[2] = any;
    }
}
MF_EXPORT_KERNEL(emu_barrier_votes)

/// Deadlock: the upper threads exit while the others wait at the barrier.
extern "C" __global__ void emu_deadlock_exited(int* out)
{
    if (threadIdx.x >= 32) return;
    __syncthreads(); // site: deadlock-exited
    out[threadIdx.x] = 1;
}
MF_EXPORT_KERNEL(emu_deadlock_exited)

/// Divergent barriers: odd and even threads wait at different __syncthreads.
extern "C" __global__ void emu_divergent_barriers(int* out)
{
    if (threadIdx.x % 2 == 1)
    {
        __syncthreads(); // site: divergent-odd
        out[threadIdx.x] = 1;
    }
    else
    {
        __syncthreads(); // site: divergent-even
        out[threadIdx.x] = 2;
    }
}
MF_EXPORT_KERNEL(emu_divergent_barriers)

/// A warp shuffle whose lane 7 has exited.
extern "C" __global__ void emu_shuffle_after_exit(float* out)
{
    if (threadIdx.x % 32 == 7) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1); // site: shuffle-after-exit
}
MF_EXPORT_KERNEL(emu_shuffle_after_exit)

/// Thread `culprit` of block 1 traps.
extern "C" __global__ void emu_trap(int culprit)
{
    if (blockIdx.x == 1 && threadIdx.x == static_cast<unsigned>(culprit)) __trap(); // site: trap
}
MF_EXPORT_KERNEL(emu_trap)
