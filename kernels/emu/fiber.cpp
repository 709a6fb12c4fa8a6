#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

// The switch pushes rbp, rbx, r12-r15, reserves 16 bytes for MXCSR (at 8) and the x87 control word (at 0), stores
// rsp, loads the other stack and undoes the same steps. ucontext would also save the signal mask with a system
// call, which makes it 7-8x slower.
asm(R"(
    .text
    .globl  mf_emu_switch_context
    .hidden mf_emu_switch_context
    .type   mf_emu_switch_context, @function
    .p2align 4
mf_emu_switch_context:
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $16, %rsp
    stmxcsr 8(%rsp)
    fnstcw  (%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    fldcw   (%rsp)
    ldmxcsr 8(%rsp)
    addq    $16, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .size   mf_emu_switch_context, .-mf_emu_switch_context

    .globl  mf_emu_fiber_entry
    .hidden mf_emu_fiber_entry
    .type   mf_emu_fiber_entry, @function
    .p2align 4
mf_emu_fiber_entry:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r13, %rdi
    callq   *%r12
    ud2
    .cfi_endproc
    .size   mf_emu_fiber_entry, .-mf_emu_fiber_entry
)");

extern "C" void mf_emu_fiber_entry();

namespace mf_emu
{
namespace
{
// Frame layout written by prepare_fiber, from the saved stack pointer upwards (see the switch above).
enum FrameSlot : int { X87ControlWord, Mxcsr, R15, R14, R13, R12, Rbx, Rbp, ReturnAddress, FrameSlots };

constexpr std::uint64_t DefaultMxcsr = 0x1f80;  // all exceptions masked, round to nearest, no flush-to-zero
constexpr std::uint64_t DefaultX87Control = 0x037f;

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }
} // namespace

void* prepare_fiber(void* top, void (*entry)(void*), void* argument)
{
    // After `ret` pops the return address, rsp must be 16-byte aligned so that mf_emu_fiber_entry's call leaves the
    // entry function with the ABI's rsp % 16 == 8. Two spare slots above the frame give that alignment.
    auto* frame = static_cast<std::uint64_t*>(top) - FrameSlots - 2;
    frame[X87ControlWord] = DefaultX87Control;
    frame[Mxcsr] = DefaultMxcsr;
    frame[R15] = frame[R14] = frame[Rbx] = 0;
    frame[R13] = reinterpret_cast<std::uint64_t>(argument);
    frame[R12] = reinterpret_cast<std::uint64_t>(entry);
    frame[Rbp] = 0; // ends the frame-pointer chain for debuggers
    frame[ReturnAddress] = reinterpret_cast<std::uint64_t>(&mf_emu_fiber_entry);
    frame[FrameSlots] = frame[FrameSlots + 1] = 0;
    return frame;
}

FiberStacks::~FiberStacks() { release(); }

void FiberStacks::release()
{
    if (base_ != nullptr) munmap(base_, stride_ * count_);
    base_ = nullptr;
    count_ = 0;
}

void FiberStacks::reserve(unsigned count, std::size_t stack_bytes)
{
    if (count <= count_ && stack_bytes == stack_bytes_) return;
    const std::size_t page = page_size();
    const std::size_t stack = (stack_bytes + StaggerSlots * StaggerBytes + page - 1) / page * page;
    const std::size_t stride = stack + page;
    if (count < count_) count = count_; // never shrink the number of fibers
    release();
    void* base = mmap(nullptr, stride * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    for (unsigned i = 0; i < count; ++i)
        if (mprotect(static_cast<char*>(base) + i * stride, page, PROT_NONE) != 0)
        {
            munmap(base, stride * count);
            throw std::bad_alloc();
        }
    base_ = base;
    stride_ = stride;
    stack_bytes_ = stack_bytes;
    count_ = count;
}
} // namespace mf_emu
