/* C ABI of libmelfusion_emu.so, the CPU emulation of the project's CUDA kernels.
 *
 * Every function returns an error code instead of throwing; the message of the last failure on the calling thread is
 * mf_emu_last_error(). Launches are synchronous. Schedule and thread-count settings belong to the calling thread, so
 * concurrent callers (parallel test runners) do not disturb each other. */
#ifndef MF_EMU_H
#define MF_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MF_EMU_EXPORT __attribute__((visibility("default")))

enum mf_emu_status
{
    MF_EMU_SUCCESS = 0,
    MF_EMU_INVALID_LAUNCH = 1, /* unknown kernel, bad dimensions, too much shared memory, bad setting */
    MF_EMU_KERNEL_FAILED = 2,  /* deadlock, divergent barrier, bad warp collective, __trap() */
    MF_EMU_INTERNAL_ERROR = 3, /* out of memory for fiber stacks or threads */
};

/* Order in which the threads of a block run between two synchronisation points. In-order matches the natural
 * expectation; reverse and random (seeded, reproducible) expose a missing __syncthreads as a wrong result. */
enum mf_emu_schedule
{
    MF_EMU_SCHEDULE_DEFAULT = -1, /* back to the MF_EMU_SCHEDULE environment default */
    MF_EMU_SCHEDULE_IN_ORDER = 0,
    MF_EMU_SCHEDULE_REVERSE = 1,
    MF_EMU_SCHEDULE_RANDOM = 2,
};

/* Runs `kernel` over the grid, like cuLaunchKernel: `params` holds one pointer per kernel parameter, pointing at
 * the argument's value. */
MF_EMU_EXPORT int mf_emu_launch(const char* kernel, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                                unsigned block_x, unsigned block_y, unsigned block_z, unsigned shared_bytes,
                                void** params);

/* The message of the calling thread's last failure ("" when none); valid until its next call. */
MF_EMU_EXPORT const char* mf_emu_last_error(void);

/* Sets the calling thread's schedule; the default comes from MF_EMU_SCHEDULE=in-order|reverse|random[:seed]. */
MF_EMU_EXPORT int mf_emu_set_schedule(int mode, uint64_t seed);

/* OS threads the calling thread's launches spread blocks over; 0 restores the default (MF_EMU_THREADS or all
 * cores). */
MF_EMU_EXPORT int mf_emu_set_threads(int count);

/* How many OS threads ran blocks in the calling thread's last launch. */
MF_EMU_EXPORT int mf_emu_last_launch_threads(void);

/* Stack size of every fiber (one per GPU thread), default MF_EMU_STACK_KB or 64 KiB; at least 16 KiB. */
MF_EMU_EXPORT int mf_emu_set_stack_size(size_t bytes);

/* Registered kernels, in registration order; a library loaded later (the test kernels) adds its own. */
MF_EMU_EXPORT int mf_emu_kernel_count(void);
MF_EMU_EXPORT const char* mf_emu_kernel_name(int index);
MF_EMU_EXPORT const char* mf_emu_kernel_module(int index);

/* Parameter count and sizes in bytes of a kernel, -1 when unknown; lets callers validate kernelParams. */
MF_EMU_EXPORT int mf_emu_kernel_param_count(const char* kernel);
MF_EMU_EXPORT int mf_emu_kernel_param_size(const char* kernel, int index);

#ifdef __cplusplus
}
#endif

#endif
