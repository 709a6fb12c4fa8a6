using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Emulation;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Gradients of |STFT|, the mel projection and log-clamp: the vocoder's mel and multi-resolution STFT losses.</summary>
public class AudioGradientTests
{
    // dwave sums d|X|·X/|X| over ≤ 33 bins and ≤ 16 frames (|dwave| up to ~20) through f32 FFTs of ≤ 64 points; with every
    // |X| ≥ 0.01 (the fixture's draw) f32 rounding stays below 1e-4, while a wrong bin, sign, window or fold is off by O(1).
    private const float Atol = 2e-4f, Rtol = 1e-4f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(StftMagnitudeGradientOp), MemberType = typeof(TestBackends))]
    public void StftMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("stft_grad");
        foreach (string c in f.Cases)
        {
            var (nFft, hop, window) = (f.MetaInt($"{c}.n_fft"), f.MetaInt($"{c}.hop"), f.MetaInt($"{c}.win_length"));
            var dwave = GradientFixtureRunner.Gradients(backend, (g, i) => g.StftMagnitude(i[0], nFft, hop, window),
                [f.Feed($"{c}.wave", "wave")], f.Feed($"{c}.dy", "dy"), "wave")[0];
            Check.Close(f.F32($"{c}.dwave"), dwave, Atol, Rtol, $"{backend}: stft {c} dwave");
        }
    }

    /// <summary>The CPU kernel at every vector width (scalar included), whatever this machine would pick.</summary>
    [Fact]
    public unsafe void StftEveryVectorWidthMatchesTorchAutograd()
    {
        using var f = Fixture.Open("stft_grad");
        using var cpu = new CpuBackend();
        foreach (string c in f.Cases)
        {
            var forward = new StftMagnitudeOp(f.MetaInt($"{c}.n_fft"), f.MetaInt($"{c}.hop"), f.MetaInt($"{c}.win_length"));
            var op = new StftMagnitudeGradientOp(forward);
            var (wave, dy, expected) = (f.F32($"{c}.wave"), f.F32($"{c}.dy"), f.F32($"{c}.dwave"));
            var waveShape = f.Shape($"{c}.wave");
            TensorDesc[] inputs = [new(DType.F32, new TensorShape(waveShape)), new(DType.F32, new TensorShape(f.Shape($"{c}.dy")))];
            var output = op.InferOutput(inputs);
            long workspaceBytes = cpu.WorkspaceBytes(op, inputs, output);
            float* workspace = (float*)NativeMemory.AlignedAlloc((nuint)workspaceBytes, 64);
            try
            {
                var actual = new float[expected.Length];
                fixed (float* w = wave, d = dy, o = actual)
                {
                    var job = new StftKernel.GradientJob(cpu.FftPlan(forward), forward.Hop, w, waveShape[0], waveShape[1], d,
                        inputs[1].Shape[2], workspace, workspace + op.FrameGradientFloats(inputs[1].Shape), o);
                    void Expect(string width)
                    {
                        Check.Close(expected, actual, Atol, Rtol, $"stft {c} dwave, {width}");
                        Array.Clear(actual);
                    }
                    StftKernel.RunGradient<StftKernel.LanesScalar, float>(job);
                    Expect("scalar");
                    StftKernel.RunGradient<StftKernel.Lanes128, Vector128<float>>(job);
                    Expect("Vector128");
                    StftKernel.RunGradient<StftKernel.Lanes256, Vector256<float>>(job);
                    Expect("Vector256");
                    StftKernel.RunGradient<StftKernel.Lanes512, Vector512<float>>(job);
                    Expect("Vector512");
                }
            }
            finally
            {
                NativeMemory.AlignedFree(workspace);
            }
        }
    }

    /// <summary>log(clamp(filterbank · |STFT|)) back to the wave and to the filterbank.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(StftMagnitudeGradientOp), MemberType = typeof(TestBackends))]
    public void LogMelChainMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("mel_grad");
        int nFft = f.MetaInt("chain.n_fft"), hop = f.MetaInt("chain.hop");
        float min = f.MetaFloat("chain.min");
        var grads = GradientFixtureRunner.Gradients(backend,
            (g, i) => g.LogClamp(g.MelSpectrogram(g.StftMagnitude(i[0], nFft, hop, nFft), i[1]), min),
            [f.Feed("chain.wave", "wave"), f.Feed("chain.filterbank", "filterbank")], f.Feed("chain.dy", "dy"), "wave", "filterbank");
        Check.Close(f.F32("chain.dwave"), grads[0], Atol, Rtol, $"{backend}: log-mel dwave");
        Check.Close(f.F32("chain.dfilterbank"), grads[1], Atol, Rtol, $"{backend}: log-mel dfilterbank");
    }

    /// <summary>dy / x above the floor, at it, and 0 below it and for NaN; one f32 division.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LogClampGradientOp), MemberType = typeof(TestBackends))]
    public void LogClampMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("mel_grad");
        float min = f.MetaFloat("log_clamp.min");
        var dx = GradientFixtureRunner.Gradients(backend, (g, i) => g.LogClamp(i[0], min),
            [f.Feed("log_clamp.x", "x")], f.Feed("log_clamp.dy", "dy"), "x")[0];
        Check.Close(f.F32("log_clamp.dx"), dx, 0f, 1e-6f, $"{backend}: log_clamp dx");
    }

    /// <summary>
    /// The CUDA kernels' shared-memory FFTs under the emulator's thread orders (in order, reversed, random) and OS thread
    /// counts: a missing barrier would read a stale or unwritten value and change bits.
    /// </summary>
    [Theory]
    [InlineData(64, 16, 48, 100)]
    [InlineData(256, 64, 256, 300)]
    public void StftGradientIsBitwiseIdenticalUnderEverySchedule(int nFft, int hop, int window, int samples)
    {
        var random = new Random(nFft);
        var forward = new StftMagnitudeOp(nFft, hop, window);
        Func<GraphBuilder, Value[], Value> build = (g, i) => g.Apply(new StftMagnitudeGradientOp(forward), i[0], i[1]);
        Feed[] feeds = [Feed.Uniform(random, 1f, "wave", 2, samples), Feed.Uniform(random, 1f, "dy", 2, forward.Bins, forward.FrameCount(samples))];
        var inOrder = EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.InOrder, 17, 1);
        Assert.DoesNotContain(inOrder, float.IsNaN);
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Reverse, 17, 2));
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Random, 17, 3));
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(StftMagnitudeGradientOp), MemberType = typeof(TestBackends))]
    public void StftGradCheck(string backend)
    {
        var random = new Random(41);
        GradCheck.Run(backend, (g, i) => g.StftMagnitude(i[0], 16, 4, 12), [Feed.Uniform(random, 1f, "wave", 2, 30)], step: 1e-3f);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(StftMagnitudeGradientOp), MemberType = typeof(TestBackends))]
    public void LogMelGradCheck(string backend)
    {
        var random = new Random(42);
        // Weights of order 1 (a Slaney bank's are ~1e-3), so that a finite step changes mel by a small fraction.
        var filterbank = new Feed("filterbank", [4, 9], [.. Enumerable.Range(0, 36).Select(_ => 0.2f + 0.8f * random.NextSingle())]);
        GradCheck.Run(backend, (g, i) => g.LogClamp(g.MelSpectrogram(g.StftMagnitude(i[0], 16, 4, 16), i[1]), 1e-5f),
            [Feed.Uniform(random, 1f, "wave", 1, 40), filterbank], step: 1e-3f);
    }

    /// <summary>
    /// log(max(x, min)) on both sides of min: below it the gradient is zero, above it 1/x. Every value lies at least 0.05
    /// from min, beyond the ±0.01 finite-difference step.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LogClampGradientOp), MemberType = typeof(TestBackends))]
    public void LogClampGradCheckOnBothSidesOfTheFloor(string backend)
    {
        float[] x = [.. Enumerable.Range(0, 12).Select(i => i % 3 == 0 ? 0.05f + 0.03f * i : 0.6f + 0.15f * i)];
        Assert.Contains(x, v => v < 0.45f);
        GradCheck.Run(backend, (g, i) => g.LogClamp(i[0], 0.5f), [new Feed("x", [3, 4], x)]);
    }

    [Fact]
    public void RejectsBadInputs()
    {
        var stft = new StftMagnitudeOp(16, 4, 16);
        AssertRejected("stft_magnitude_backward: d|X| must be F32[1, 9, 8] for wave [1, 30] (nFft 16, hop 4), got F32[1, 9, 7]", g =>
            g.Apply(new StftMagnitudeGradientOp(stft), g.Input("wave", DType.F32, 1, 30), g.Input("dy", DType.F32, 1, 9, 7)));
        AssertRejected("stft_magnitude_backward: d|X| must be F32[1, 9, 8]", g =>
            g.Apply(new StftMagnitudeGradientOp(stft), g.Input("wave", DType.F32, 1, 30), g.Input("dy", DType.F16, 1, 9, 8)));
        AssertRejected("stft_magnitude_backward: stft_magnitude: wave [1, 8] is too short", g =>
            g.Apply(new StftMagnitudeGradientOp(stft), g.Input("wave", DType.F32, 1, 8), g.Input("dy", DType.F32, 1, 9, 3)));
        AssertRejected("log_clamp_backward: x and dy must be F32 with equal dims, got x F32[2, 3] and dy F32[3, 2]", g =>
            g.Apply(new LogClampGradientOp(1e-5f), g.Input("x", DType.F32, 2, 3), g.Input("dy", DType.F32, 3, 2)));
        AssertRejected("log_clamp_backward: min must be a finite positive number, got 0", _ => new LogClampGradientOp(0f));
    }

    private static void AssertRejected(string message, Action<GraphBuilder> build) =>
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => build(new GraphBuilder())).Message);
}
