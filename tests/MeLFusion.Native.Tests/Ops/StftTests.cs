using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class StftTests
{
    /// <summary>
    /// A float32 FFT's error grows like eps·log2(n)·‖frame‖, and ‖frame‖ ~ sqrt(nFft) for these unit-scale signals;
    /// torch's own float32 stft is off from the float64 reference by up to 1.8e-7·sqrt(nFft). We allow 1e-6·sqrt(nFft)
    /// absolute (magnitudes are ~0.3·sqrt(nFft), so this is ~3e-6 relative) plus 1e-5 relative for peaks.
    /// </summary>
    private static float Atol(int nFft) => 1e-6f * MathF.Sqrt(nFft);
    private const float Rtol = 1e-5f;

    public static TheoryData<string, string> BackendsAndCases()
    {
        var data = new TheoryData<string, string>();
        using var fixture = Fixture.Open("stft");
        foreach (string backend in TestBackends.Supporting<StftMagnitudeOp>())
            foreach (var name in fixture.Cases)
                data.Add(backend, name);
        return data;
    }

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        using var fixture = Fixture.Open("stft");
        foreach (var name in fixture.Cases) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(BackendsAndCases))]
    public void MagnitudeMatchesTorchStft(string backend, string name)
    {
        using var fixture = Fixture.Open("stft");
        int nFft = fixture.MetaInt($"{name}.n_fft"), hop = fixture.MetaInt($"{name}.hop");
        int winLength = fixture.MetaInt($"{name}.win_length");
        var wave = fixture.F32($"{name}.wave");
        var actual = OpRunner.Run(backend, (g, x) => g.StftMagnitude(x[0], nFft, hop, winLength),
            new OpRunner.Feed("wave", fixture.Shape($"{name}.wave"), wave));
        Check.Close(fixture.F32($"{name}.magnitude"), actual, Atol(nFft), Rtol, $"stft {name}");
    }

    /// <summary>Runs the kernel at every vector width (scalar included), whatever this machine would pick.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public unsafe void EveryVectorWidthMatchesTorchStft(string name)
    {
        using var fixture = Fixture.Open("stft");
        int nFft = fixture.MetaInt($"{name}.n_fft"), hop = fixture.MetaInt($"{name}.hop");
        var op = new StftMagnitudeOp(nFft, hop, fixture.MetaInt($"{name}.win_length"));
        var wave = fixture.F32($"{name}.wave");
        var waveShape = fixture.Shape($"{name}.wave");
        var expected = fixture.F32($"{name}.magnitude");
        var output = op.InferOutput([new TensorDesc(DType.F32, new TensorShape(waveShape))]);
        using var cpu = new MeLFusion.Native.Backends.Cpu.CpuBackend();
        long workspaceBytes = cpu.WorkspaceBytes(op, [new TensorDesc(DType.F32, new TensorShape(waveShape))], output);
        float* workspace = (float*)NativeMemory.AlignedAlloc((nuint)workspaceBytes, 64);
        try
        {
            var actual = new float[output.Shape.ElementCount];
            fixed (float* w = wave, o = actual)
            {
                var job = new StftKernel.Job(cpu.FftPlan(op), hop, w, waveShape[0], waveShape[1], o, output.Shape[2], workspace);
                StftKernel.Run<StftKernel.LanesScalar, float>(job);
                Check.Close(expected, actual, Atol(nFft), Rtol, $"stft {name} scalar");
                Array.Clear(actual);
                StftKernel.Run<StftKernel.Lanes128, Vector128<float>>(job);
                Check.Close(expected, actual, Atol(nFft), Rtol, $"stft {name} Vector128");
                Array.Clear(actual);
                StftKernel.Run<StftKernel.Lanes256, Vector256<float>>(job);
                Check.Close(expected, actual, Atol(nFft), Rtol, $"stft {name} Vector256");
                Array.Clear(actual);
                StftKernel.Run<StftKernel.Lanes512, Vector512<float>>(job);
                Check.Close(expected, actual, Atol(nFft), Rtol, $"stft {name} Vector512");
            }
        }
        finally
        {
            NativeMemory.AlignedFree(workspace);
        }
    }

    [Fact]
    public void OutputShapeFollowsTorch()
    {
        var g = new GraphBuilder();
        var magnitude = g.StftMagnitude(g.Input("wave", DType.F32, 3, 163840), 1024, 160, 1024);
        Assert.Equal(new[] { 3, 513, 1025 }, magnitude.Shape.Dims.ToArray());
    }

    [Theory]
    [InlineData(1000, 160, 1000, "power of two")]
    [InlineData(0, 160, 0, "power of two")]
    [InlineData(1024, 0, 1024, "hop")]
    [InlineData(1024, 160, 2048, "winLength")]
    [InlineData(1024, 160, 0, "winLength")]
    public void BadParametersAreRejected(int nFft, int hop, int winLength, string mentions)
    {
        var g = new GraphBuilder();
        var wave = g.Input("wave", DType.F32, 1, 4096);
        var error = Assert.ThrowsAny<ArgumentException>(() => g.StftMagnitude(wave, nFft, hop, winLength));
        Assert.Contains("stft_magnitude", error.Message);
        Assert.Contains(mentions, error.Message);
    }

    [Fact]
    public void BadInputsAreRejected()
    {
        var g = new GraphBuilder();
        var oneDim = Assert.ThrowsAny<ArgumentException>(() => g.StftMagnitude(g.Input("a", DType.F32, 4096), 1024, 160, 1024));
        Assert.Contains("stft_magnitude", oneDim.Message);
        Assert.Contains("[4096]", oneDim.Message);
        var tooShort = Assert.ThrowsAny<ArgumentException>(() => g.StftMagnitude(g.Input("b", DType.F32, 2, 512), 1024, 160, 1024));
        Assert.Contains("[2, 512]", tooShort.Message);
        Assert.Contains("reflect", tooShort.Message);
        var half = Assert.ThrowsAny<ArgumentException>(() => g.StftMagnitude(g.Input("c", DType.F16, 2, 4096), 1024, 160, 1024));
        Assert.Contains("F32", half.Message);
    }
}
