using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class LayerNormTests
{
    /// <summary>
    /// Expected values are torch's layer_norm in float64. f32 sums over at most 1023 elements and a few roundings per
    /// element: observed under 5e-7. In the large_mean rows (mean 500, std 3) the f32 mean is only known to half an
    /// ulp of 500 (1.5e-5), which x - mean carries into the output scaled by weight / std: observed 2.5e-5.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LayerNormOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("layer_norm");
        foreach (string c in f.Cases)
        {
            bool hasWeight = f.Has($"{c}.weight"), hasBias = f.Has($"{c}.bias");
            var feeds = new List<OpRunner.Feed> { f.Feed($"{c}.x", "x") };
            if (hasWeight) feeds.Add(f.Feed($"{c}.weight", "weight"));
            if (hasBias) feeds.Add(f.Feed($"{c}.bias", "bias"));
            float eps = f.MetaFloat($"{c}.eps");
            var actual = OpRunner.Run(backend, (g, inputs) =>
                g.LayerNorm(inputs[0], hasWeight ? inputs[1] : null, hasBias ? inputs[^1] : null, eps), feeds.ToArray());
            float atol = c.StartsWith("large_mean", StringComparison.Ordinal) ? 5e-5f : 5e-6f;
            Check.Close(f.F32($"{c}.out"), actual, atol, 1e-5f, $"layer_norm {c}");
        }
    }

    [Fact]
    public void RejectsBiasOfWrongLength()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3, 7);
        var b = g.Input("b", DType.F32, 3);
        var ex = Assert.Throws<ArgumentException>(() => g.LayerNorm(x, null, b));
        Assert.Contains("layer_norm: bias is F32[3] but x F32[3, 7] needs [7]", ex.Message);
    }
}
