using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Ops;
using MeLFusion.Native.Tests.Support;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Models;

/// <summary>
/// Gradients through the generator's own block-building code (<see cref="HifiGan.ResBlock"/> and
/// <see cref="HifiGan.Upsample"/>: fused leaky-ReLU convolutions, residual adds folded into the second convolution)
/// against torch autograd in float64 (tools/reference/hifigan_grad.py): dx and every weight and bias gradient.
/// </summary>
public sealed class HifiGanGradientTests(ITestOutputHelper output)
{
    // Unit-scale values through up to six chained f32 convolutions (each element a sum of a few dozen products) and
    // back the same way; weight gradients sum ≤ 48 positions of those. Measured worst differences from the float64
    // reference stay below 4e-7 of each gradient's largest magnitude (1.4e-6 at 4.6) on cpu and cuda-emulated. 2e-5 of
    // that scale plus 1e-4 relative leaves room for other summation orders, while a wrong dilation, padding, slope or a
    // missing residual path changes gradients by O(0.1).
    private const float ScaleTolerance = 2e-5f, Rtol = 1e-4f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void ResidualBlockMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("hifigan_grad");
        foreach (string c in f.Cases.Where(c => c.StartsWith("resblock_", StringComparison.Ordinal)))
        {
            int channels = f.MetaInt($"{c}.channels"), kernel = f.MetaInt($"{c}.kernel");
            int[] dilations = [.. f.Meta($"{c}.dilations").Split(',').Select(int.Parse)];
            CheckCase(backend, f, c, (g, w, x) => HifiGan.ResBlock(g, w, x, "resblocks.0", channels, kernel, dilations));
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void UpsamplingStageMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("hifigan_grad");
        foreach (string c in f.Cases.Where(c => c.StartsWith("upsample_", StringComparison.Ordinal)))
        {
            // One stage from in_channels to in_channels / 2, as stage 0 of a generator with that initial width.
            int rate = f.MetaInt($"{c}.rate"), kernel = f.MetaInt($"{c}.kernel");
            var model = new HifiGan(new HifiGanConfig(1, [rate], [kernel], f.MetaInt($"{c}.in_channels"), [3], [[1]]));
            CheckCase(backend, f, c, (g, w, x) => model.Upsample(g, w, x, 0));
        }
    }

    /// <summary>
    /// Runs <paramref name="build"/> on the case's x with every weight a graph input (so autograd differentiates them),
    /// seeded with the case's dy, and compares y and every gradient with torch's.
    /// </summary>
    private void CheckCase(string backend, Fixture f, string c, Func<GraphBuilder, Func<string, int[], Value>, Value, Value> build)
    {
        string[] names = ["x", .. f.Meta($"{c}.params").Split(',')];
        var feeds = names.Select(n => f.Feed($"{c}.{n}", n)).ToArray();
        Value Build(GraphBuilder g, Value[] inputs)
        {
            Value Weight(string name, int[] dims)
            {
                int index = Array.IndexOf(names, name);
                Assert.True(index > 0, $"{c}: the block asks for '{name}', which the fixture lacks");
                Assert.Equal(dims, feeds[index].Shape);
                return inputs[index];
            }
            return build(g, Weight, inputs[0]);
        }
        var result = TorchBackward.Run(backend, Build, feeds, f.F32($"{c}.dy"), names);
        Compare(f.F32($"{c}.y"), result["y"], $"{backend} {c}: y");
        foreach (var name in names)
            Compare(f.F32($"{c}.d{name}"), result[name], $"{backend} {c}: d{name}");
    }

    private void Compare(float[] expected, float[] actual, string what)
    {
        float scale = expected.Max(MathF.Abs);
        output.WriteLine($"{what}: max |diff| {Check.MaxAbsDiff(expected, actual):E2} of scale {scale:G3}");
        Check.Close(expected, actual, ScaleTolerance * scale, Rtol, what);
    }
}
