// The CUDA emulator runtime: kernel registry, block scheduler (one fiber per GPU thread), worker pool, C API.
#include "cuda_emu.h"
#include "fiber.h"
#include "mf_emu.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace mf_emu
{
namespace detail
{
MF_EMU_API __thread uint3 current_thread_idx;
MF_EMU_API __thread uint3 current_block_idx;
MF_EMU_API __thread dim3 current_block_dim;
MF_EMU_API __thread dim3 current_grid_dim;
} // namespace detail

namespace
{
constexpr unsigned WarpSize = 32;
constexpr unsigned MaxBlockThreads = 1024;
constexpr std::size_t MinStackBytes = 16 * 1024;
/// Warp operations one warp may complete in a row under the reverse and random schedules before the next warp runs.
constexpr unsigned MaxWarpPassesPerRound = 4096;

std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* pattern, ...)
{
    char buffer[512];
    va_list args;
    va_start(args, pattern);
    vsnprintf(buffer, sizeof buffer, pattern, args);
    va_end(args);
    return buffer;
}

/// "dir/kernels/group_norm.cu" -> "group_norm.cu": messages stay short and independent of the build directory.
const char* file_name(const char* path)
{
    const char* slash = strrchr(path, '/');
    return slash != nullptr ? slash + 1 : path;
}

std::string site(const char* file, int line) { return format("%s:%d", file_name(file), line); }

// ---- registry ------------------------------------------------------------------------------------------------

struct Registry
{
    std::shared_mutex mutex;
    std::deque<KernelInfo> kernels; // a deque keeps found entries valid while later libraries register more
    std::unordered_map<std::string, std::size_t> by_name;
    std::unordered_map<std::string, std::string> duplicates; // name -> the module that tried to register it again
};

// Never destroyed: libraries register from their static initialisers and may launch during process exit.
Registry& registry()
{
    static Registry* instance = new Registry;
    return *instance;
}

// ---- settings ---------------------------------------------------------------------------------------------------

struct ScheduleSetting
{
    int mode = MF_EMU_SCHEDULE_IN_ORDER;
    std::uint64_t seed = 0;
};

ScheduleSetting schedule_from_environment()
{
    ScheduleSetting setting;
    const char* value = getenv("MF_EMU_SCHEDULE");
    if (value == nullptr || *value == '\0' || strcmp(value, "in-order") == 0) return setting;
    if (strcmp(value, "reverse") == 0)
        setting.mode = MF_EMU_SCHEDULE_REVERSE;
    else if (strncmp(value, "random", 6) == 0 && (value[6] == '\0' || value[6] == ':'))
    {
        setting.mode = MF_EMU_SCHEDULE_RANDOM;
        setting.seed = value[6] == ':' ? strtoull(value + 7, nullptr, 10) : 0;
    }
    else
        fprintf(stderr, "mf_emu: MF_EMU_SCHEDULE='%s' is not in-order, reverse, random or random:SEED; using in-order\n",
                value);
    return setting;
}

unsigned threads_from_environment()
{
    if (const char* value = getenv("MF_EMU_THREADS"); value != nullptr && atoi(value) > 0)
        return static_cast<unsigned>(atoi(value));
    return std::max(1u, std::thread::hardware_concurrency());
}

std::size_t stack_bytes_from_environment()
{
    if (const char* value = getenv("MF_EMU_STACK_KB"); value != nullptr && atoi(value) > 0)
        return std::max<std::size_t>(MinStackBytes, static_cast<std::size_t>(atoi(value)) * 1024);
    return 64 * 1024;
}

std::atomic<std::size_t> g_stack_bytes{stack_bytes_from_environment()};

/// Per calling thread, so that concurrent callers (parallel test classes) keep their own settings and errors.
struct CallerState
{
    ScheduleSetting schedule = schedule_from_environment();
    unsigned threads = threads_from_environment();
    int last_launch_threads = 0;
    std::string last_error;
};

CallerState& caller()
{
    thread_local CallerState state;
    return state;
}

// ---- launches and the block scheduler ---------------------------------------------------------------------------

struct Launch
{
    const KernelInfo* kernel;
    void** params;
    dim3 grid, block;
    unsigned shared_bytes;
    ScheduleSetting schedule;
    unsigned participants; // OS threads; participant p runs blocks p, p + participants, ...
    std::size_t stack_bytes;

    std::atomic<bool> failed{false};
    std::atomic<bool> internal_failure{false};
    std::atomic<unsigned> threads_used{0};
    std::mutex error_mutex;
    std::string error;

    void fail(const std::string& message, bool internal = false)
    {
        std::lock_guard lock(error_mutex);
        if (error.empty()) error = message;
        if (internal) internal_failure = true;
        failed = true;
    }
};

enum class FiberState : std::uint8_t { Runnable, AtBarrier, AtWarp, Exited, Failed };

/// Warp operations a lane can wait at: the four shuffle modes, then the votes, then the warp collectives.
constexpr int vote_op(VoteKind kind) { return 4 + static_cast<int>(kind); }
constexpr int CollectiveOp = vote_op(VoteKind::SyncWarp) + 1;

struct Fiber
{
    void* sp;
    uint3 thread_idx;
    FiberState state;
    int op; // BarrierKind at a barrier; ShuffleMode or vote_op() at a warp operation
    const char* what;
    const char* file;
    int line;
    unsigned mask;
    int predicate;
    unsigned result;
    unsigned source_lane;
    unsigned value_size;
    alignas(16) unsigned char value[16];
    alignas(16) unsigned char received[16];
    void* operands;            // a warp collective's per-lane data
    WarpCollective complete;   // and the function that completes it
};

bool same_site(const Fiber& a, const Fiber& b)
{
    return a.op == b.op && a.line == b.line && (a.file == b.file || strcmp(a.file, b.file) == 0);
}

std::string describe(const Fiber& f)
{
    return format("thread (%u,%u,%u)", f.thread_idx.x, f.thread_idx.y, f.thread_idx.z);
}

std::string describe_wait(const Fiber& f)
{
    std::string text = format("%s at %s", f.what, site(f.file, f.line).c_str());
    if (f.state == FiberState::AtWarp) text += format(" (mask 0x%08x)", f.mask);
    return text;
}

/// splitmix64: a reproducible order per (seed, block) whatever OS thread runs the block.
class Random
{
public:
    Random(std::uint64_t seed, std::uint64_t block) : state_(seed ^ (block * 0x9e3779b97f4a7c15ull)) {}

    unsigned below(unsigned bound) { return static_cast<unsigned>(((next() >> 32) * bound) >> 32); }

private:
    std::uint64_t next()
    {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

    std::uint64_t state_;
};

class BlockRunner;
__thread BlockRunner* tl_runner;

/// Runs blocks on one OS thread: one fiber per GPU thread, resumed round by round in the launch's schedule order
/// until each reaches a synchronisation point, which is then released as a whole or reported as a deadlock.
class BlockRunner
{
public:
    void run_blocks(Launch& launch, unsigned participant)
    {
        launch_ = &launch;
        detail::current_block_dim = launch.block;
        detail::current_grid_dim = launch.grid;
        const unsigned threads = launch.block.x * launch.block.y * launch.block.z;
        stacks_.reserve(threads, launch.stack_bytes);
        if (fibers_.size() < threads) fibers_.resize(threads);
        const std::uint64_t blocks = std::uint64_t{launch.grid.x} * launch.grid.y * launch.grid.z;
        bool ran = false;
        for (std::uint64_t b = participant; b < blocks && !launch.failed; b += launch.participants)
        {
            ran = true;
            run_block(b, threads);
        }
        if (ran) ++launch.threads_used;
        launch_ = nullptr;
    }

    bool in_kernel() const { return current_ != nullptr; }

    Fiber& current() { return *current_; }

    void yield(Fiber& fiber) { mf_emu_switch_context(&fiber.sp, scheduler_sp_); }

    /// Ends the calling fiber for good and fails its block.
    [[noreturn]] void fail_current(const std::string& message)
    {
        Fiber& fiber = current();
        fiber.state = FiberState::Failed;
        if (block_error_.empty()) block_error_ = describe(fiber) + ": " + message;
        yield(fiber);
        __builtin_unreachable();
    }

    unsigned lane_of_current() const { return static_cast<unsigned>(current_ - fibers_.data()) % WarpSize; }

    unsigned live_lanes_of_current() const
    {
        const unsigned first = static_cast<unsigned>(current_ - fibers_.data()) / WarpSize * WarpSize;
        const unsigned count = std::min(WarpSize, block_threads_ - first);
        unsigned mask = 0;
        for (unsigned lane = 0; lane < count; ++lane)
            if (fibers_[first + lane].state != FiberState::Exited) mask |= 1u << lane;
        return mask;
    }

private:
    enum class BarrierOutcome { Finished, Released, Failed };

    static void fiber_main(void* argument)
    {
        auto& fiber = *static_cast<Fiber*>(argument);
        BlockRunner& runner = *tl_runner;
        try
        {
            runner.launch_->kernel->invoke(runner.launch_->params);
            fiber.state = FiberState::Exited;
        }
        catch (const std::exception& e)
        {
            fiber.state = FiberState::Failed;
            if (runner.block_error_.empty()) runner.block_error_ = describe(fiber) + ": threw " + e.what();
        }
        catch (...)
        {
            fiber.state = FiberState::Failed;
            if (runner.block_error_.empty()) runner.block_error_ = describe(fiber) + ": threw an exception";
        }
        mf_emu_switch_context(&fiber.sp, runner.scheduler_sp_);
        __builtin_unreachable();
    }

    void run_block(std::uint64_t linear_block, unsigned threads)
    {
        const Launch& launch = *launch_;
        const dim3 grid = launch.grid, block = launch.block;
        detail::current_block_idx = {static_cast<unsigned>(linear_block % grid.x),
                                     static_cast<unsigned>(linear_block / grid.x % grid.y),
                                     static_cast<unsigned>(linear_block / (std::uint64_t{grid.x} * grid.y))};
        block_threads_ = threads;
        block_error_.clear();
        // 0xff bytes are a NaN in f32, f16, bf16 and f64 (and -1 in integers): reads of unwritten shared memory show.
        if (launch.shared_bytes != 0) memset(launch.kernel->dynamic_shared(), 0xff, launch.shared_bytes);
        for (unsigned t = 0; t < threads; ++t)
        {
            Fiber& fiber = fibers_[t];
            fiber.state = FiberState::Runnable;
            fiber.thread_idx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
            fiber.sp = prepare_fiber(stacks_.top(t), &fiber_main, &fiber);
        }
        Random random(launch.schedule.seed, linear_block);
        for (;;)
        {
            run_round(random);
            if (block_error_.empty() && release_warps()) continue;
            if (block_error_.empty())
            {
                const BarrierOutcome outcome = release_barrier();
                if (outcome == BarrierOutcome::Finished) return;
                if (outcome == BarrierOutcome::Released) continue;
            }
            const uint3 b = detail::current_block_idx;
            launch_->fail(format("kernel '%s' block (%u,%u,%u): ", launch.kernel->name, b.x, b.y, b.z) + block_error_);
            return;
        }
    }

    void resume(unsigned t)
    {
        Fiber& fiber = fibers_[t];
        current_ = &fiber;
        detail::current_thread_idx = fiber.thread_idx;
        mf_emu_switch_context(&scheduler_sp_, fiber.sp);
        current_ = nullptr;
    }

    /// Resumes fiber t if it can run; false once the block has failed.
    bool step(unsigned t)
    {
        if (fibers_[t].state == FiberState::Runnable) resume(t);
        return block_error_.empty();
    }

    /// Runs every runnable fiber up to its next synchronisation point or its end.
    ///
    /// In order: one pass in index order, so all warps advance in lockstep, one synchronisation point per round.
    /// Reverse and random: warp by warp (in reverse or random order), the lanes of each in reverse or random order, and
    /// each warp runs ahead through its own warp operations, released as soon as its lanes have arrived, until it waits
    /// at a block barrier, has exited or waits for lanes that cannot arrive. That is the largest skew between warps: a
    /// missing __syncthreads between warps whose synchronisation points line up (a tile overwritten while another warp
    /// still reads it) stays hidden in lockstep but shows here.
    void run_round(Random& random)
    {
        const unsigned n = block_threads_;
        const int mode = launch_->schedule.mode;
        if (mode != MF_EMU_SCHEDULE_REVERSE && mode != MF_EMU_SCHEDULE_RANDOM)
        {
            for (unsigned t = 0; t < n && step(t); ++t) {}
            return;
        }
        const unsigned warps = (n + WarpSize - 1) / WarpSize;
        order(warp_order_, warps, mode, random);
        for (const unsigned warp : warp_order_)
        {
            const unsigned first = warp * WarpSize, count = std::min(WarpSize, n - first);
            // Bounded, so that a warp spinning on another warp's progress through warp operations lets it run.
            for (unsigned pass = 0; pass < MaxWarpPassesPerRound; ++pass)
            {
                order(order_, count, mode, random);
                for (const unsigned lane : order_)
                    if (!step(first + lane)) return;
                if (!release_warp(first)) break;
            }
            if (!block_error_.empty()) return;
        }
    }

    /// Fills `indices` with 0 .. count - 1 in reverse or random order.
    static void order(std::vector<unsigned>& indices, unsigned count, int mode, Random& random)
    {
        indices.resize(count);
        for (unsigned i = 0; i < count; ++i)
        {
            if (mode == MF_EMU_SCHEDULE_REVERSE)
            {
                indices[i] = count - 1 - i;
                continue;
            }
            const unsigned j = random.below(i + 1); // inside-out Fisher-Yates
            indices[i] = indices[j];
            indices[j] = i;
        }
    }

    /// Completes every warp operation whose whole mask has arrived; reports lanes that can never arrive.
    bool release_warps()
    {
        bool released = false;
        for (unsigned first = 0; first < block_threads_ && block_error_.empty(); first += WarpSize)
            released |= release_warp(first);
        return released && block_error_.empty();
    }

    /// release_warps for the warp whose lane 0 is fiber `first`; false when nothing was released or the block failed.
    bool release_warp(unsigned first)
    {
        bool released = false;
        Fiber* lanes = &fibers_[first];
        const unsigned count = std::min(WarpSize, block_threads_ - first);
        const unsigned existing = count == WarpSize ? ~0u : (1u << count) - 1;
        unsigned waiting = 0;
        for (unsigned lane = 0; lane < count; ++lane)
            if (lanes[lane].state == FiberState::AtWarp) waiting |= 1u << lane;
        while (waiting != 0)
        {
            const unsigned lane = static_cast<unsigned>(__builtin_ctz(waiting));
            const Fiber& leader = lanes[lane];
            const unsigned group = leader.mask & existing;
            waiting &= ~(group | (1u << lane));
            if ((group >> lane & 1) == 0)
            {
                block_error_ = describe(leader) + ": " + describe_wait(leader) +
                               format(" names a mask without its own lane %u", lane);
                return false;
            }
            bool complete = true;
            for (unsigned bits = group; bits != 0; bits &= bits - 1)
            {
                const Fiber& other = lanes[__builtin_ctz(bits)];
                if (other.state == FiberState::Exited)
                {
                    block_error_ = describe_wait(leader) + format(": lane %d, ", __builtin_ctz(bits)) +
                                   describe(other) + ", has exited and can never arrive";
                    return false;
                }
                if (other.state != FiberState::AtWarp)
                    complete = false; // waits at a block barrier: reported if nothing else can move
                else if (other.op != leader.op || other.mask != leader.mask ||
                         other.value_size != leader.value_size ||
                         (leader.op == CollectiveOp &&
                          (other.complete != leader.complete || !same_site(other, leader))))
                {
                    block_error_ = format("warp lanes disagree: lane %u (", lane) + describe(leader) + ") at " +
                                   describe_wait(leader) + format(", lane %d (", __builtin_ctz(bits)) +
                                   describe(other) + ") at " + describe_wait(other);
                    return false;
                }
            }
            if (!complete) continue;
            if (!complete_warp_operation(lanes, group, leader)) return false;
            released = true;
        }
        return released;
    }

    /// Releases the lanes of `group` from the operation `leader` waits at; false (with the block's error set) when a
    /// warp collective's completion fails.
    bool complete_warp_operation(Fiber* lanes, unsigned group, const Fiber& leader)
    {
        const int op = leader.op;
        if (op == CollectiveOp)
        {
            void* operands[WarpSize] = {};
            for (unsigned bits = group; bits != 0; bits &= bits - 1)
                operands[__builtin_ctz(bits)] = lanes[__builtin_ctz(bits)].operands;
            char error[512] = "";
            if (!leader.complete(operands, group, error, sizeof error))
            {
                block_error_ = describe(leader) + ": " + describe_wait(leader) + ": " + error;
                return false;
            }
            for (unsigned bits = group; bits != 0; bits &= bits - 1)
                lanes[__builtin_ctz(bits)].state = FiberState::Runnable;
            return true;
        }
        if (op < vote_op(VoteKind::Ballot))
        {
            for (unsigned bits = group; bits != 0; bits &= bits - 1)
            {
                Fiber& fiber = lanes[__builtin_ctz(bits)];
                if (group >> fiber.source_lane & 1)
                    memcpy(fiber.received, lanes[fiber.source_lane].value, fiber.value_size);
                else
                    memset(fiber.received, 0xff, fiber.value_size); // undefined on a GPU: make it a visible NaN
                fiber.state = FiberState::Runnable;
            }
            return true;
        }
        unsigned ballot = 0;
        for (unsigned bits = group; bits != 0; bits &= bits - 1)
            if (lanes[__builtin_ctz(bits)].predicate != 0) ballot |= 1u << __builtin_ctz(bits);
        const unsigned result = op == vote_op(VoteKind::Any)   ? (ballot != 0)
                                : op == vote_op(VoteKind::All) ? (ballot == group)
                                                               : ballot;
        for (unsigned bits = group; bits != 0; bits &= bits - 1)
        {
            lanes[__builtin_ctz(bits)].result = result;
            lanes[__builtin_ctz(bits)].state = FiberState::Runnable;
        }
        return true;
    }

    /// Releases the block barrier when every thread waits at the same one; otherwise the block can never finish.
    BarrierOutcome release_barrier()
    {
        const unsigned n = block_threads_;
        unsigned exited = 0, waiting = 0;
        bool one_site = true;
        const Fiber* first = nullptr;
        for (unsigned t = 0; t < n; ++t)
        {
            const Fiber& fiber = fibers_[t];
            if (fiber.state == FiberState::Exited) ++exited;
            if (fiber.state != FiberState::AtBarrier) continue;
            ++waiting;
            if (first == nullptr)
                first = &fiber;
            else if (!same_site(fiber, *first))
                one_site = false;
        }
        if (exited == n) return BarrierOutcome::Finished;
        if (waiting == n && one_site)
        {
            unsigned count = 0;
            for (unsigned t = 0; t < n; ++t) count += fibers_[t].predicate != 0;
            const auto kind = static_cast<BarrierKind>(first->op);
            const unsigned result = kind == BarrierKind::Count ? count
                                    : kind == BarrierKind::And ? count == n
                                    : kind == BarrierKind::Or  ? count != 0
                                                               : 0;
            for (unsigned t = 0; t < n; ++t)
            {
                fibers_[t].result = result;
                fibers_[t].state = FiberState::Runnable;
            }
            return BarrierOutcome::Released;
        }
        block_error_ = (waiting == n ? "divergent barriers: " : "deadlock: ") + summarize_stuck_threads();
        return BarrierOutcome::Failed;
    }

    /// "32 threads wait at __syncthreads at k.cu:40 (first: thread (0,0,0)); 32 threads have exited (first: ...)"
    std::string summarize_stuck_threads() const
    {
        std::vector<const Fiber*> groups;
        std::vector<unsigned> counts;
        for (unsigned t = 0; t < block_threads_; ++t)
        {
            const Fiber& fiber = fibers_[t];
            std::size_t g = 0;
            while (g < groups.size() &&
                   !(groups[g]->state == fiber.state && (fiber.state == FiberState::Exited || same_site(*groups[g], fiber))))
                ++g;
            if (g == groups.size())
            {
                groups.push_back(&fiber);
                counts.push_back(0);
            }
            ++counts[g];
        }
        std::string text;
        for (std::size_t g = 0; g < groups.size(); ++g)
        {
            if (!text.empty()) text += "; ";
            text += format("%u threads ", counts[g]);
            text += groups[g]->state == FiberState::Exited ? std::string("have exited") : "wait at " + describe_wait(*groups[g]);
            text += " (first: " + describe(*groups[g]) + ")";
        }
        return text;
    }

    Launch* launch_ = nullptr;
    FiberStacks stacks_;
    std::vector<Fiber> fibers_;
    std::vector<unsigned> order_;      // lanes (or threads) in schedule order
    std::vector<unsigned> warp_order_;
    unsigned block_threads_ = 0;
    Fiber* current_ = nullptr;
    void* scheduler_sp_ = nullptr;
    std::string block_error_;
};

BlockRunner& this_thread_runner()
{
    thread_local std::unique_ptr<BlockRunner> runner;
    if (!runner)
    {
        runner = std::make_unique<BlockRunner>();
        tl_runner = runner.get();
    }
    return *runner;
}

void run_participant(Launch& launch, unsigned participant)
{
    try
    {
        this_thread_runner().run_blocks(launch, participant);
    }
    catch (const std::bad_alloc&)
    {
        launch.fail("out of memory for fiber stacks", true);
    }
    catch (const std::exception& e)
    {
        launch.fail(e.what(), true);
    }
}

/// OS threads that run the blocks of one launch at a time; the calling thread is participant 0.
class WorkerPool
{
public:
    static WorkerPool& instance()
    {
        static WorkerPool* pool = new WorkerPool; // never destroyed: workers block forever, the process ends them
        return *pool;
    }

    void run(Launch& launch)
    {
        std::lock_guard launch_lock(launch_mutex_);
        const unsigned helpers = launch.participants - 1;
        {
            std::lock_guard lock(mutex_);
            while (workers_.size() < helpers)
            {
                const unsigned index = static_cast<unsigned>(workers_.size());
                workers_.emplace_back([this, index] { work(index); });
                workers_.back().detach();
            }
            launch_ = &launch;
            helpers_ = helpers;
            pending_ = helpers;
            ++generation_;
        }
        wake_.notify_all();
        run_participant(launch, 0);
        std::unique_lock lock(mutex_);
        done_.wait(lock, [this] { return pending_ == 0; });
        launch_ = nullptr;
    }

private:
    void work(unsigned index)
    {
        std::uint64_t seen = 0;
        for (;;)
        {
            Launch* launch;
            {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                if (index >= helpers_) continue;
                launch = launch_;
            }
            run_participant(*launch, index + 1);
            std::lock_guard lock(mutex_);
            if (--pending_ == 0) done_.notify_all();
        }
    }

    std::mutex launch_mutex_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    Launch* launch_ = nullptr;
    unsigned helpers_ = 0;
    unsigned pending_ = 0;
    std::uint64_t generation_ = 0;
};

BlockRunner& runner_in_kernel(const char* what, const char* file, int line)
{
    BlockRunner* runner = tl_runner;
    if (runner == nullptr || !runner->in_kernel())
    {
        fprintf(stderr, "mf_emu: %s called outside a kernel at %s\n", what, site(file, line).c_str());
        abort();
    }
    return *runner;
}

// ---- C API helpers ----------------------------------------------------------------------------------------------

int fail(int status, std::string message)
{
    caller().last_error = std::move(message);
    return status;
}

/// Runs a C API body; an exception becomes `failure` with its message (exceptions never cross the C ABI).
template <class Result, class Body>
Result guarded(Result failure, Body&& body) noexcept
{
    try
    {
        return body();
    }
    catch (const std::exception& e)
    {
        try
        {
            caller().last_error = e.what();
        }
        catch (...)
        {
        }
    }
    catch (...)
    {
    }
    return failure;
}

/// The kernel named `name`, or null with the reason in `error`.
const KernelInfo* find_kernel(const char* name, std::string& error)
{
    if (name == nullptr)
    {
        error = "kernel name is null";
        return nullptr;
    }
    Registry& r = registry();
    std::shared_lock lock(r.mutex);
    if (auto dup = r.duplicates.find(name); dup != r.duplicates.end())
    {
        error = format("kernel '%s' is registered twice (by %s and by %s)", name, r.kernels[r.by_name[name]].module,
                       dup->second.c_str());
        return nullptr;
    }
    auto found = r.by_name.find(name);
    if (found != r.by_name.end()) return &r.kernels[found->second];
    error = format("unknown kernel '%s'; registered:", name);
    for (const KernelInfo& k : r.kernels) error += std::string(" ") + k.name;
    return nullptr;
}

std::string check_dimensions(dim3 grid, dim3 block, unsigned shared_bytes)
{
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535)
        return format("grid (%u,%u,%u) is outside CUDA's limits (1..2^31-1, 1..65535, 1..65535)", grid.x, grid.y, grid.z);
    const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        threads > MaxBlockThreads)
        return format("block (%u,%u,%u) is outside CUDA's limits (x, y <= 1024, z <= 64, at most 1024 threads)",
                      block.x, block.y, block.z);
    if (shared_bytes > MF_EMU_MAX_DYNAMIC_SHARED)
        return format("%u bytes of dynamic shared memory exceed the %u-byte limit", shared_bytes,
                      MF_EMU_MAX_DYNAMIC_SHARED);
    return {};
}
} // namespace

// ---- the kernel-facing runtime (cuda_emu.h) ----------------------------------------------------------------------

void register_kernel(const KernelInfo& info) noexcept
{
    try
    {
        Registry& r = registry();
        std::unique_lock lock(r.mutex);
        if (r.by_name.count(info.name) != 0)
        {
            r.duplicates.emplace(info.name, info.module);
            return;
        }
        r.by_name.emplace(info.name, r.kernels.size());
        r.kernels.push_back(info);
    }
    catch (...)
    {
        fprintf(stderr, "mf_emu: out of memory registering kernel '%s'\n", info.name);
    }
}

void warp_shuffle(ShuffleMode mode, unsigned mask, const void* value, void* result, unsigned size, int lane_or_delta,
                  int width, const char* what, const char* file, int line)
{
    BlockRunner& runner = runner_in_kernel(what, file, line);
    if (width < 1 || width > static_cast<int>(WarpSize) || (width & (width - 1)) != 0)
        runner.fail_current(format("%s at %s: width %d is not a power of two in 1..32", what, site(file, line).c_str(),
                                   width));
    // The source lane, exactly as PTX shfl.sync computes it from b (lane or delta) and c (segment and clamp).
    const int lane = static_cast<int>(runner.lane_of_current());
    const int segment_mask = static_cast<int>(WarpSize) - width;
    const int b = lane_or_delta & 31;
    const int clamp = mode == ShuffleMode::Up ? 0 : 31;
    const int max_lane = (lane & segment_mask) | (clamp & ~segment_mask);
    int source = lane;
    bool in_range = false;
    switch (mode)
    {
    case ShuffleMode::Up: source = lane - b; in_range = source >= max_lane; break;
    case ShuffleMode::Down: source = lane + b; in_range = source <= max_lane; break;
    case ShuffleMode::Xor: source = lane ^ b; in_range = source <= max_lane; break;
    case ShuffleMode::Index: source = (lane & segment_mask) | (b & ~segment_mask); in_range = source <= max_lane; break;
    }
    Fiber& fiber = runner.current();
    fiber.state = FiberState::AtWarp;
    fiber.op = static_cast<int>(mode);
    fiber.what = what;
    fiber.file = file;
    fiber.line = line;
    fiber.mask = mask;
    fiber.source_lane = static_cast<unsigned>(in_range ? source : lane);
    fiber.value_size = size;
    memcpy(fiber.value, value, size);
    runner.yield(fiber);
    memcpy(result, fiber.received, size);
}

unsigned warp_vote(VoteKind kind, unsigned mask, int predicate, const char* what, const char* file, int line)
{
    BlockRunner& runner = runner_in_kernel(what, file, line);
    Fiber& fiber = runner.current();
    fiber.state = FiberState::AtWarp;
    fiber.op = vote_op(kind);
    fiber.what = what;
    fiber.file = file;
    fiber.line = line;
    fiber.mask = mask;
    fiber.predicate = predicate;
    fiber.value_size = 0;
    runner.yield(fiber);
    return fiber.result;
}

int block_barrier(BarrierKind kind, int predicate, const char* what, const char* file, int line)
{
    BlockRunner& runner = runner_in_kernel(what, file, line);
    Fiber& fiber = runner.current();
    fiber.state = FiberState::AtBarrier;
    fiber.op = static_cast<int>(kind);
    fiber.what = what;
    fiber.file = file;
    fiber.line = line;
    fiber.predicate = predicate;
    runner.yield(fiber);
    return static_cast<int>(fiber.result);
}

unsigned active_mask() { return runner_in_kernel("__activemask", "", 0).live_lanes_of_current(); }

void warp_collective(unsigned mask, void* operands, WarpCollective complete, const char* what, const char* file,
                     int line)
{
    BlockRunner& runner = runner_in_kernel(what, file, line);
    Fiber& fiber = runner.current();
    fiber.state = FiberState::AtWarp;
    fiber.op = CollectiveOp;
    fiber.what = what;
    fiber.file = file;
    fiber.line = line;
    fiber.mask = mask;
    fiber.value_size = 0;
    fiber.operands = operands;
    fiber.complete = complete;
    runner.yield(fiber);
}

unsigned active_lane() { return runner_in_kernel("a lane query", "", 0).lane_of_current(); }

void fail_lane(const char* what, const char* message, const char* file, int line)
{
    runner_in_kernel(what, file, line).fail_current(format("%s at %s: %s", what, site(file, line).c_str(), message));
}

void trap(const char* file, int line)
{
    runner_in_kernel("__trap", file, line).fail_current("__trap() at " + site(file, line));
}
} // namespace mf_emu

// ---- C API --------------------------------------------------------------------------------------------------------

using namespace mf_emu;

extern "C" int mf_emu_launch(const char* kernel, unsigned grid_x, unsigned grid_y, unsigned grid_z, unsigned block_x,
                             unsigned block_y, unsigned block_z, unsigned shared_bytes, void** params)
{
    return guarded<int>(MF_EMU_INTERNAL_ERROR, [&] {
        std::string error;
        const KernelInfo* info = find_kernel(kernel, error);
        if (info == nullptr) return fail(MF_EMU_INVALID_LAUNCH, error);
        const dim3 grid(grid_x, grid_y, grid_z), block(block_x, block_y, block_z);
        error = check_dimensions(grid, block, shared_bytes);
        if (!error.empty()) return fail(MF_EMU_INVALID_LAUNCH, format("kernel '%s': ", kernel) + error);
        if (params == nullptr && info->param_count != 0)
            return fail(MF_EMU_INVALID_LAUNCH, format("kernel '%s' takes %d parameters but params is null", kernel,
                                                      info->param_count));
        CallerState& state = caller();
        const std::uint64_t blocks = std::uint64_t{grid_x} * grid_y * grid_z;
        Launch launch{};
        launch.kernel = info;
        launch.params = params;
        launch.grid = grid;
        launch.block = block;
        launch.shared_bytes = shared_bytes;
        launch.schedule = state.schedule;
        launch.participants = static_cast<unsigned>(std::min<std::uint64_t>(state.threads, blocks));
        launch.stack_bytes = g_stack_bytes;
        WorkerPool::instance().run(launch);
        state.last_launch_threads = static_cast<int>(launch.threads_used);
        if (launch.failed)
            return fail(launch.internal_failure ? MF_EMU_INTERNAL_ERROR : MF_EMU_KERNEL_FAILED, launch.error);
        return static_cast<int>(MF_EMU_SUCCESS);
    });
}

extern "C" const char* mf_emu_last_error(void)
{
    return guarded<const char*>("", [] { return caller().last_error.c_str(); });
}

extern "C" int mf_emu_set_schedule(int mode, uint64_t seed)
{
    return guarded<int>(MF_EMU_INTERNAL_ERROR, [&] {
        if (mode == MF_EMU_SCHEDULE_DEFAULT)
            caller().schedule = schedule_from_environment();
        else if (mode == MF_EMU_SCHEDULE_IN_ORDER || mode == MF_EMU_SCHEDULE_REVERSE || mode == MF_EMU_SCHEDULE_RANDOM)
            caller().schedule = {mode, seed};
        else
            return fail(MF_EMU_INVALID_LAUNCH,
                        format("schedule %d is not -1 (default), 0 (in order), 1 (reverse) or 2 (random)", mode));
        return static_cast<int>(MF_EMU_SUCCESS);
    });
}

extern "C" int mf_emu_set_threads(int count)
{
    return guarded<int>(MF_EMU_INTERNAL_ERROR, [&] {
        if (count < 0) return fail(MF_EMU_INVALID_LAUNCH, format("thread count %d is negative", count));
        caller().threads = count == 0 ? threads_from_environment() : static_cast<unsigned>(count);
        return static_cast<int>(MF_EMU_SUCCESS);
    });
}

extern "C" int mf_emu_last_launch_threads(void)
{
    return guarded(0, [] { return caller().last_launch_threads; });
}

extern "C" int mf_emu_set_stack_size(size_t bytes)
{
    return guarded<int>(MF_EMU_INTERNAL_ERROR, [&] {
        if (bytes < MinStackBytes)
            return fail(MF_EMU_INVALID_LAUNCH,
                        format("fiber stacks need at least %zu bytes, got %zu", MinStackBytes, bytes));
        g_stack_bytes = bytes;
        return static_cast<int>(MF_EMU_SUCCESS);
    });
}

extern "C" int mf_emu_kernel_count(void)
{
    return guarded(0, [] {
        std::shared_lock lock(registry().mutex);
        return static_cast<int>(registry().kernels.size());
    });
}

namespace
{
template <class Field>
const char* kernel_field(int index, Field field)
{
    return guarded<const char*>(nullptr, [&]() -> const char* {
        std::shared_lock lock(registry().mutex);
        const auto& kernels = registry().kernels;
        return index >= 0 && static_cast<std::size_t>(index) < kernels.size() ? kernels[index].*field : nullptr;
    });
}
} // namespace

extern "C" const char* mf_emu_kernel_name(int index) { return kernel_field(index, &KernelInfo::name); }

extern "C" const char* mf_emu_kernel_module(int index) { return kernel_field(index, &KernelInfo::module); }

extern "C" int mf_emu_kernel_param_count(const char* kernel)
{
    return guarded(-1, [&] {
        std::string error;
        const KernelInfo* info = find_kernel(kernel, error);
        return info != nullptr ? info->param_count : fail(-1, error);
    });
}

extern "C" int mf_emu_kernel_param_size(const char* kernel, int index)
{
    return guarded(-1, [&] {
        std::string error;
        const KernelInfo* info = find_kernel(kernel, error);
        if (info == nullptr) return fail(-1, error);
        if (index < 0 || index >= info->param_count)
            return fail(-1, format("kernel '%s' has no parameter %d", kernel, index));
        return static_cast<int>(info->param_sizes[index]);
    });
}
