// Fibers for the CUDA emulator: a hand-written x86-64 context switch and reusable guarded stacks.
#pragma once

#include <cstddef>

namespace mf_emu
{
/// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
/// pointer in *save_sp, then resumes the context whose stack pointer is load_sp. About 15 ns a switch.
extern "C" void mf_emu_switch_context(void** save_sp, void* load_sp);

/// Builds the initial frame of a fiber on the stack ending at `top` (16-byte aligned) so that the first switch to
/// the returned stack pointer calls entry(argument). `entry` must never return: it switches away for the last time.
void* prepare_fiber(void* top, void (*entry)(void*), void* argument);

/// Stacks for the fibers of one OS thread, each with a guard page below it; grown on demand and reused by every
/// block that thread runs.
class FiberStacks
{
public:
    FiberStacks() = default;
    FiberStacks(const FiberStacks&) = delete;
    FiberStacks& operator=(const FiberStacks&) = delete;
    ~FiberStacks();

    /// Makes room for `count` stacks of at least `stack_bytes` each (throws std::bad_alloc when mmap fails).
    void reserve(unsigned count, std::size_t stack_bytes);

    /// The (exclusive, 16-byte aligned) top of stack `index`. Tops are staggered by a multiple of a cache line: at
    /// equal offsets in their pages, the hot tops of all fibers would compete for the same few L1 cache sets.
    void* top(unsigned index) const
    {
        return static_cast<char*>(base_) + (index + 1) * stride_ - (index % StaggerSlots) * StaggerBytes;
    }

    static constexpr std::size_t StaggerBytes = 64;
    static constexpr unsigned StaggerSlots = 64;

private:
    void release();

    void* base_ = nullptr;
    std::size_t stride_ = 0; // guard page + stack
    std::size_t stack_bytes_ = 0;
    unsigned count_ = 0;
};
} // namespace mf_emu
