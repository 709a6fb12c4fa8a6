using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// kernels/group_norm.cu run by the emulator against a straightforward double-precision group norm, on shapes whose
/// channel counts are not multiples of groups * 32 and with spatial sizes 1, 7 and 4096.
/// </summary>
public class GroupNormKernelTests
{
    private const float Eps = 1e-5f;

    public static TheoryData<int, int, int[], bool, bool> Cases => new()
    {
        // batch, groups, dims after batch (channels first), affine, silu
        { 2, 3, [6, 7], true, false },
        { 1, 4, [12, 1], true, true },
        { 2, 4, [40, 64, 64], true, true },
        { 1, 5, [5, 3, 5], false, false },
        { 3, 1, [7, 33], true, true },
        { 1, 2, [70, 9], false, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void F32MatchesDoubleReference(int batch, int groups, int[] dims, bool affine, bool silu)
    {
        var (x, gamma, beta, shape) = Inputs(batch, dims, seed: batch * 31 + groups, offset: 0);
        var actual = Run(DType.F32, x, affine ? gamma : null, affine ? beta : null, shape, groups, silu);
        var expected = Reference(x, affine ? gamma : null, affine ? beta : null, shape, groups, Eps, silu);
        // f32 statistics over at most 40960 values in a fixed tree order: the worst error seen is 5e-7 on outputs up
        // to ~5, so 2e-6 leaves a margin of 4x or more and still fails on any real defect.
        Check.Close(expected, actual, 2e-6f, 2e-6f, $"group_norm f32 {string.Join("x", shape)} groups {groups}");
    }

    [Fact]
    public void LargeMeanSmallSpreadStaysAccurate()
    {
        // E[x^2] - E[x]^2 in f32 would lose every digit here; the variance about the mean keeps them.
        int[] shape = [2, 8, 300];
        var (x, gamma, beta, _) = Inputs(2, [8, 300], seed: 4, offset: 1000f, scale: 0.01f);
        var actual = Run(DType.F32, x, gamma, beta, shape, 2, false);
        var expected = Reference(x, gamma, beta, shape, 2, Eps, false);
        // The reference sees the same (quantised) inputs, so only the kernel's own rounding counts: as accurate as the
        // zero-mean cases. Without the pivot the f32 sums were off by 1.2% of a standard deviation, and an f32 mean
        // near 1000 alone by 0.3%.
        Check.Close(expected, actual, 2e-6f, 2e-6f, "group_norm with mean 1000 and std 0.01");
    }

    [Theory]
    [InlineData(DType.F16, 1e-3f, 9.8e-4f)] // outputs rounded to f16: half an ulp is 2^-11 relative; rtol is one ulp
    [InlineData(DType.BF16, 4e-3f, 7.9e-3f)] // outputs rounded to bf16: half an ulp is 2^-8 relative; rtol is one ulp
    public void SixteenBitInputsMatchReferenceOnRoundedInputs(DType dtype, float atol, float rtol)
    {
        int[] shape = [2, 12, 7, 9];
        var (x, gamma, beta, _) = Inputs(2, [12, 7, 9], seed: 8, offset: 0.5f);
        var rounded = RoundTrip(x, dtype);
        var actual = Run(dtype, rounded, gamma, beta, shape, 3, true);
        var expected = Reference(rounded, gamma, beta, shape, 3, Eps, true);
        Check.Close(expected, actual, atol, rtol, $"group_norm {dtype}");
    }

    [Fact]
    public void ResultIsBitwiseIdenticalUnderEverySchedule()
    {
        int[] shape = [2, 40, 64, 16];
        var (x, gamma, beta, _) = Inputs(2, [40, 64, 16], seed: 12, offset: 0.25f);
        var inOrder = Run(DType.F32, x, gamma, beta, shape, 8, true, EmulatorSchedule.InOrder, threads: 1);
        Assert.Equal(inOrder, Run(DType.F32, x, gamma, beta, shape, 8, true, EmulatorSchedule.Reverse, threads: 2));
        Assert.Equal(inOrder, Run(DType.F32, x, gamma, beta, shape, 8, true, EmulatorSchedule.Random, threads: 3));
    }

    [Fact]
    public void BadArgumentsNameTheOpAndShapes()
    {
        using var device = new EmulatedDevice();
        var x = device.Allocate(DType.F32, 2, 6, 5);
        var y = device.Allocate(DType.F32, 2, 6, 5);
        var ex = Assert.Throws<ArgumentException>(() => GroupNormKernel.Launch(device.Backend, x, null, null, y, 4, 1e-5f, false));
        Assert.Contains("group_norm: 6 channels of x F32[2, 6, 5] do not split into 4 groups", ex.Message);
        var wrongGamma = device.Allocate(DType.F32, 5);
        ex = Assert.Throws<ArgumentException>(() => GroupNormKernel.Launch(device.Backend, x, wrongGamma, null, y, 3, 1e-5f, false));
        Assert.Contains("gamma F32[5]", ex.Message);
        var ints = device.Allocate(DType.I32, 2, 6, 5);
        ex = Assert.Throws<ArgumentException>(() => GroupNormKernel.Launch(device.Backend, ints, null, null, ints, 3, 1e-5f, false));
        Assert.Contains("supported: F32, F16, BF16", ex.Message);
    }

    private static (float[] X, float[] Gamma, float[] Beta, int[] Shape) Inputs(int batch, int[] dims, int seed,
        float offset, float scale = 1f)
    {
        var random = new Random(seed);
        int[] shape = [batch, .. dims];
        int count = shape.Aggregate(1, (a, b) => a * b);
        var x = Enumerable.Range(0, count).Select(_ => offset + scale * (float)(random.NextDouble() * 4 - 2)).ToArray();
        var gamma = Enumerable.Range(0, dims[0]).Select(_ => (float)(random.NextDouble() + 0.5)).ToArray();
        var beta = Enumerable.Range(0, dims[0]).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        return (x, gamma, beta, shape);
    }

    private static float[] Run(DType dtype, float[] x, float[]? gamma, float[]? beta, int[] shape, int groups, bool silu,
        EmulatorSchedule schedule = EmulatorSchedule.Default, int threads = 0)
    {
        using var device = new EmulatedDevice(schedule, seed: 3, threads: threads);
        var bytes = new byte[x.Length * dtype.Size()];
        FloatConversions.FromSingle(x, dtype, bytes);
        var input = device.UploadBytes(bytes, dtype, shape);
        var output = device.Allocate(dtype, shape);
        Tensor? g = gamma is null ? null : device.Upload(gamma, DType.F32);
        Tensor? b = beta is null ? null : device.Upload(beta, DType.F32);
        GroupNormKernel.Launch(device.Backend, input, g, b, output, groups, Eps, silu);
        var result = new float[x.Length];
        var raw = new byte[x.Length * dtype.Size()];
        device.Backend.CopyToHost(output.Data, raw);
        FloatConversions.ToSingle(raw, dtype, result, "group_norm output");
        return result;
    }

    private static float[] RoundTrip(float[] values, DType dtype)
    {
        var bytes = new byte[values.Length * dtype.Size()];
        FloatConversions.FromSingle(values, dtype, bytes);
        var back = new float[values.Length];
        FloatConversions.ToSingle(bytes, dtype, back, "rounding");
        return back;
    }

    private static float[] Reference(float[] x, float[]? gamma, float[]? beta, int[] shape, int groups, double eps, bool silu)
    {
        int batch = shape[0], channels = shape[1], spatial = x.Length / (batch * channels), perGroup = channels / groups;
        var y = new float[x.Length];
        for (int n = 0; n < batch; n++)
            for (int g = 0; g < groups; g++)
            {
                int start = (n * channels + g * perGroup) * spatial, count = perGroup * spatial;
                double mean = 0, variance = 0;
                for (int i = 0; i < count; i++) mean += x[start + i];
                mean /= count;
                for (int i = 0; i < count; i++) variance += (x[start + i] - mean) * (x[start + i] - mean);
                double rstd = 1 / Math.Sqrt(variance / count + eps);
                for (int i = 0; i < count; i++)
                {
                    int c = g * perGroup + i / spatial;
                    double v = (x[start + i] - mean) * rstd * (gamma?[c] ?? 1.0) + (beta?[c] ?? 0.0);
                    if (silu) v /= 1 + Math.Exp(-v);
                    y[start + i] = (float)v;
                }
            }
        return y;
    }
}
