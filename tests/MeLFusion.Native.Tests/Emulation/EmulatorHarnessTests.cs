using System.Runtime.InteropServices;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The CPU emulation of CUDA itself, through the test-only kernels of kernels/emu/tests: barriers, warp collectives
/// against their CUDA definitions, shared memory, deadlock reports, schedules that expose a missing barrier, blocks
/// spread over OS threads.
/// </summary>
public class EmulatorHarnessTests
{
    private static readonly EmulatorSchedule[] AllSchedules = [EmulatorSchedule.InOrder, EmulatorSchedule.Reverse, EmulatorSchedule.Random];

    [Theory]
    [InlineData(EmulatorSchedule.InOrder)]
    [InlineData(EmulatorSchedule.Reverse)]
    [InlineData(EmulatorSchedule.Random)]
    public void BarrierOrdersStaticSharedMemory(EmulatorSchedule schedule)
    {
        using var device = new EmulatedDevice(schedule, seed: 7);
        const int threads = 96, blocks = 3;
        var input = Enumerable.Range(0, threads * blocks).Select(i => i * 3 + 1).ToArray();
        var x = device.Upload(input, DType.I32);
        var y = device.Allocate(DType.I32, threads * blocks);
        device.Launch("emu_reverse_block", blocks, threads, 0, x, y);
        var expected = Enumerable.Range(0, threads * blocks).Select(i => input[i / threads * threads + threads - 1 - i % threads]);
        Assert.Equal(expected, device.Download<int>(y));
    }

    [Fact]
    public void PlantedMissingBarrierHidesInOrderButFailsReverseAndRandom()
    {
        const int threads = 128;
        var input = Enumerable.Range(0, threads).Select(i => (float)i).ToArray();
        var expected = Enumerable.Range(0, threads).Select(i => 2f * Math.Max(i - 1, 0)).ToArray();

        float[] Run(string kernel, EmulatorSchedule schedule, ulong seed)
        {
            using var device = new EmulatedDevice(schedule, seed);
            var x = device.Upload(input, DType.F32);
            var y = device.Allocate(DType.F32, threads);
            device.Launch(kernel, 1, threads, threads * sizeof(float), x, y);
            return device.Download<float>(y);
        }

        foreach (var schedule in AllSchedules)
            foreach (ulong seed in new ulong[] { 1, 2, 3 })
                Assert.Equal(expected, Run("emu_previous_doubled", schedule, seed));
        // In index order every thread's neighbour has already written: the race stays invisible...
        Assert.Equal(expected, Run("emu_previous_doubled_missing_barrier", EmulatorSchedule.InOrder, 0));
        // ...reverse and random order read the NaN of unwritten shared memory.
        Assert.Contains(Run("emu_previous_doubled_missing_barrier", EmulatorSchedule.Reverse, 0), float.IsNaN);
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
            Assert.Contains(Run("emu_previous_doubled_missing_barrier", EmulatorSchedule.Random, seed), float.IsNaN);
    }

    [Fact]
    public void PlantedMissingBarrierBetweenWarpsInLockstepIsCaughtByReverseAndRandom()
    {
        const int threads = 128, steps = 3;
        var input = Enumerable.Range(0, threads * steps).Select(i => (float)i).ToArray();
        var expected = Enumerable.Range(0, threads * steps).Select(i => (float)(i / threads * threads + (i % threads + 32) % threads)).ToArray();

        float[] Run(string kernel, EmulatorSchedule schedule, ulong seed)
        {
            using var device = new EmulatedDevice(schedule, seed);
            var x = device.Upload(input, DType.F32);
            var y = device.Allocate(DType.F32, threads * steps);
            device.Launch(kernel, 1, threads, threads * sizeof(float), x, y, steps);
            return device.Download<float>(y);
        }

        foreach (var schedule in AllSchedules)
            Assert.Equal(expected, Run("emu_next_warp_each_step", schedule, 4));
        // Warps in lockstep all read a step's tile before any restages it...
        Assert.Equal(expected, Run("emu_next_warp_each_step_missing_barrier", EmulatorSchedule.InOrder, 0));
        // ...warps that run ahead restage it first.
        Assert.NotEqual(expected, Run("emu_next_warp_each_step_missing_barrier", EmulatorSchedule.Reverse, 0));
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
            Assert.NotEqual(expected, Run("emu_next_warp_each_step_missing_barrier", EmulatorSchedule.Random, seed));
    }

    [Fact]
    public void DynamicSharedMemoryStartsAsNaNInEveryBlock()
    {
        using var device = new EmulatedDevice(threads: 1); // one OS thread: block 1 reuses block 0's buffer
        const int threads = 64, blocks = 3;
        var y = device.Allocate(DType.F32, threads * blocks);
        device.Launch("emu_read_fresh_shared", blocks, threads, threads * sizeof(float), y);
        Assert.All(device.Download<float>(y), v => Assert.True(float.IsNaN(v), $"{v} read from fresh shared memory"));
    }

    [Fact]
    public void FreshDeviceMemoryIsNaN()
    {
        using var device = new EmulatedDevice();
        Assert.All(device.Download<float>(device.Allocate(DType.F32, 17)), v => Assert.True(float.IsNaN(v)));
    }

    [Theory]
    [InlineData(0, 0, 0, 0)]
    [InlineData(1, 96, 1, 1)]
    [InlineData(3, 32, 0, 1)]
    public void BarrierVotesCountAndAndOr(int every, int count, int all, int any)
    {
        using var device = new EmulatedDevice(EmulatorSchedule.Random, seed: 5);
        const int threads = 96;
        var predicates = Enumerable.Range(0, threads).Select(i => every != 0 && i % every == 0 ? 1 : 0).ToArray();
        var x = device.Upload(predicates, DType.I32);
        var y = device.Allocate(DType.I32, 3);
        device.Launch("emu_barrier_votes", 1, threads, 0, x, y);
        Assert.Equal(new[] { count, all, any }, device.Download<int>(y));
    }

    [Theory]
    [InlineData(EmulatorSchedule.InOrder)]
    [InlineData(EmulatorSchedule.Reverse)]
    [InlineData(EmulatorSchedule.Random)]
    public void WarpCollectivesMatchTheirCudaDefinitions(EmulatorSchedule schedule)
    {
        using var device = new EmulatedDevice(schedule, seed: 11);
        const int threads = 64, results = 16;
        // Warp 0: all below 1000 and non-negative; warp 1: some above 1000 and one negative.
        var v = Enumerable.Range(0, threads).Select(t => t < 32 ? (t * 37 + 11) % 997 : (t * 53) % 1500).ToArray();
        v[40] = -5;
        var x = device.Upload(v, DType.I32);
        var y = device.Allocate(DType.I32, threads * results);
        device.Launch("emu_warp_collectives", 1, threads, 0, x, y);
        var actual = device.Download<int>(y);

        for (int t = 0; t < threads; t++)
        {
            int lane = t % 32, warp = t - lane;
            int V(int l) => v[warp + l];
            int Shfl(int src, int width) => V(lane / width * width + src % width);
            int Up(int delta, int width) => lane % width >= delta ? V(lane - delta) : V(lane);
            int Down(int delta, int width) => lane % width + delta < width ? V(lane + delta) : V(lane);
            int Xor(int mask, int width) => (lane ^ mask) < (lane / width + 1) * width ? V(lane ^ mask) : V(lane); // earlier groups only
            int Ballot(Func<int, bool> p, int lanes) => Enumerable.Range(0, lanes).Where(l => p(V(l))).Aggregate(0, (b, l) => b | 1 << l);

            int[] expected =
            [
                Shfl((lane * 7 + 3) % 32, 32),
                Shfl(5, 8),
                Up(3, 32),
                Up(2, 16),
                Down(5, 32),
                Down(1, 4),
                Xor(13, 32),
                Xor(12, 8),
                Ballot(a => a % 2 != 0, 32),
                Enumerable.Range(0, 32).Any(l => V(l) > 1000) ? 1 : 0,
                Enumerable.Range(0, 32).All(l => V(l) >= 0) ? 1 : 0,
                -1, // __activemask(): all 32 lanes live
                lane < 16 ? V(lane ^ 1) : -1,
                lane < 16 ? Ballot(a => a % 3 == 0, 16) : -1,
                (int)(((float)(lane < 31 ? V(lane + 1) : V(lane)) + 0.5f) * 2f),
                4 * V(31 - lane) + 6,
            ];
            Assert.Equal(expected, actual.AsSpan(t * results, results).ToArray());
        }
        Assert.Contains(actual.Where((_, i) => i % results == 9), a => a == 0); // both outcomes of __any_sync occur
        Assert.Contains(actual.Where((_, i) => i % results == 9), a => a == 1);
    }

    [Fact]
    public void DeadlockOnExitedThreadsNamesKernelAndLine()
    {
        var error = LaunchExpectingFailure("emu_deadlock_exited", 64);
        Assert.Contains("'emu_deadlock_exited'", error.Message);
        Assert.Contains($"sync_kernels.cu:{SourceLine("sync_kernels.cu", "deadlock-exited")}", error.Message);
        Assert.Contains("32 threads have exited", error.Message);
    }

    [Fact]
    public void DivergentBarriersNameBothLines()
    {
        var error = LaunchExpectingFailure("emu_divergent_barriers", 64);
        Assert.Contains("divergent barriers", error.Message);
        Assert.Contains($"sync_kernels.cu:{SourceLine("sync_kernels.cu", "divergent-odd")}", error.Message);
        Assert.Contains($"sync_kernels.cu:{SourceLine("sync_kernels.cu", "divergent-even")}", error.Message);
    }

    [Fact]
    public void ShuffleWithAnExitedLaneNamesLaneAndLine()
    {
        var error = LaunchExpectingFailure("emu_shuffle_after_exit", 64);
        Assert.Contains($"__shfl_xor_sync at sync_kernels.cu:{SourceLine("sync_kernels.cu", "shuffle-after-exit")}", error.Message);
        Assert.Contains("lane 7", error.Message);
    }

    [Fact]
    public void TrapNamesBlockThreadAndLine()
    {
        var error = LaunchExpectingFailure("emu_trap", 64, 9);
        Assert.Contains("block (1,0,0)", error.Message);
        Assert.Contains("thread (9,0,0)", error.Message);
        Assert.Contains($"sync_kernels.cu:{SourceLine("sync_kernels.cu", "trap")}", error.Message);
    }

    [Fact]
    public void FailedLaunchLeavesTheEmulatorUsable()
    {
        LaunchExpectingFailure("emu_deadlock_exited", 64);
        BarrierOrdersStaticSharedMemory(EmulatorSchedule.InOrder);
    }

    [Fact]
    public void BlocksOnSeveralThreadsGiveTheSameResultAsOneThread()
    {
        const int threads = 128, blocks = 257;
        var random = new Random(3);
        var input = Enumerable.Range(0, threads * blocks).Select(_ => (float)random.Next(-100, 101)).ToArray();
        var expected = Enumerable.Range(0, blocks).Select(b => input.AsSpan(b * threads, threads).ToArray().Sum()).ToArray();

        float[] Run(int osThreads)
        {
            using var device = new EmulatedDevice(EmulatorSchedule.Random, seed: 1, threads: osThreads);
            var x = device.Upload(input, DType.F32);
            var y = device.Allocate(DType.F32, blocks);
            device.Launch("emu_block_sum", blocks, threads, 0, x, y);
            Assert.Equal(osThreads, CudaEmulatedBackend.LastLaunchThreads);
            return device.Download<float>(y);
        }

        var single = Run(1);
        Assert.Equal(expected, single); // small integers: every order of summation is exact
        Assert.Equal(single, Run(4));
    }

    [Fact]
    public void ManyBlocksOnAThreeDimensionalGrid()
    {
        using var device = new EmulatedDevice(threads: 3);
        Dim3 grid = (40, 30, 5), block = (8, 4, 2);
        int total = 40 * 30 * 5 * 8 * 4 * 2;
        var y = device.Allocate(DType.I32, total);
        device.Launch("emu_linear_index", grid, block, 0, y);
        Assert.Equal(Enumerable.Range(0, total), device.Download<int>(y));
    }

    [Fact]
    public unsafe void CppHostCodeLaunchesThroughTheLaunchMacro()
    {
        using var device = new EmulatedDevice();
        var launch = (delegate* unmanaged<int*, uint, uint, int>)NativeLibrary.GetExport(EmulatedDevice.TestLibrary, "mf_emu_test_launch_from_cpp");
        var y = device.Allocate(DType.I32, 5 * 64);
        Assert.Equal(0, launch(y.Ptr<int>(), 5, 64));
        Assert.Equal(Enumerable.Range(0, 5 * 64), device.Download<int>(y));
    }

    [Fact]
    public void IntegerAtomicsAcrossThreads()
    {
        using var device = new EmulatedDevice(threads: 4);
        var counters = device.Upload(new[] { 0, int.MinValue }, DType.I32);
        device.Launch("emu_atomics", 100, 128, 0, counters);
        Assert.Equal(new[] { 12800, 12799 }, device.Download<int>(counters));
    }

    [Fact]
    public void SixteenBitConversionsRoundToNearestEven()
    {
        using var device = new EmulatedDevice();
        var random = new Random(9);
        float[] values =
        [
            0f, -0f, 1f, -2.5f, 65504f, 65519.99f, 65520f, 1e-8f, 5.96e-8f, 2.98e-8f, 6.1e-5f, 1.00048828125f,
            1.00146484375f, 1.00390625f, 1.01171875f, float.PositiveInfinity, float.NegativeInfinity, 3.4e38f,
            .. Enumerable.Range(0, 200).Select(_ => (float)(random.NextDouble() * 2 - 1) * MathF.Pow(2, random.Next(-30, 30))),
        ];
        int n = values.Length;
        var x = device.Upload(values, DType.F32);
        var halfBits = device.Allocate(DType.F16, n);
        var bf16Bits = device.Allocate(DType.BF16, n);
        var halfBack = device.Allocate(DType.F32, n);
        device.Launch("emu_convert_16bit", (n + 63) / 64, 64, 0, x, halfBits, bf16Bits, halfBack, n);
        var halves = device.Download<ushort>(halfBits);
        var bf16 = device.Download<ushort>(bf16Bits);
        var back = device.Download<float>(halfBack);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)values[i]), halves[i]);
            Assert.Equal(FloatConversions.SingleToBFloat16(values[i]), bf16[i]);
            Assert.Equal((float)(Half)values[i], back[i]);
        }
    }

    [Fact]
    public void LaunchArgumentsAreCheckedAgainstTheKernelSignature()
    {
        using var device = new EmulatedDevice();
        var y = device.Allocate(DType.I32, 64);
        var tooFew = Assert.Throws<ArgumentException>(() => device.Launch("emu_reverse_block", 1, 64, 0, y));
        Assert.Contains("takes 2 parameters, got 1", tooFew.Message);
        var wrongSize = Assert.Throws<ArgumentException>(() => device.Launch("emu_reverse_block", 1, 64, 0, y, 1.5f));
        Assert.Contains("parameter 1 is 8 bytes", wrongSize.Message);
        var unknown = Assert.Throws<KernelLaunchException>(() => device.Launch("no_such_kernel", 1, 64, 0));
        Assert.Contains("unknown kernel 'no_such_kernel'", unknown.Message);
    }

    [Theory]
    [InlineData(1, 1, 1, 2048, 1, 1, 0u, "block (2048,1,1)")]
    [InlineData(0, 1, 1, 64, 1, 1, 0u, "grid (0,1,1)")]
    [InlineData(1, 70000, 1, 64, 1, 1, 0u, "grid (1,70000,1)")]
    [InlineData(1, 1, 1, 64, 1, 1, 300000u, "300000 bytes of dynamic shared memory")]
    public void InvalidLaunchDimensionsAreReported(int gx, int gy, int gz, int bx, int by, int bz, uint shared, string reason)
    {
        using var device = new EmulatedDevice();
        var x = device.Allocate(DType.I32, 64);
        var error = Assert.Throws<KernelLaunchException>(() => device.Launch("emu_reverse_block", (gx, gy, gz), (bx, by, bz), shared, x, x));
        Assert.Equal("emu_reverse_block", error.Kernel);
        Assert.Contains(reason, error.Message);
    }

    private static KernelLaunchException LaunchExpectingFailure(string kernel, int threads, params LaunchArg[] extra)
    {
        using var device = new EmulatedDevice();
        var y = device.Allocate(DType.I32, threads);
        LaunchArg[] args = extra.Length > 0 ? extra : [y];
        var error = Assert.Throws<KernelLaunchException>(() => device.Launch(kernel, 3, threads, 0, args));
        Assert.Equal(kernel, error.Kernel);
        return error;
    }

    /// <summary>1-based line of the "// site: <paramref name="marker"/>" comment in kernels/emu/tests/<paramref name="file"/>.</summary>
    internal static int SourceLine(string file, string marker)
    {
        var lines = File.ReadAllLines(Path.Combine(Fixture.RepositoryRoot, "kernels", "emu", "tests", file));
        int index = Array.FindIndex(lines, l => l.EndsWith("// site: " + marker, StringComparison.Ordinal));
        Assert.True(index >= 0, $"{file} has no '// site: {marker}' line");
        return index + 1;
    }
}
