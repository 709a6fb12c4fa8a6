using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class RmsNormTests
{
    /// <summary>
    /// Expected values are T5's formula in float64. One f32 sum of squares (at most 1023 terms) and three roundings
    /// per element: relative error ~1e-6, absolute tolerance for outputs near zero.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(RmsNormOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("rms_norm");
        foreach (string c in f.Cases)
        {
            float eps = f.MetaFloat($"{c}.eps");
            var actual = OpRunner.Run(backend, (g, inputs) => g.RmsNorm(inputs[0], inputs[1], eps),
                f.Feed($"{c}.x", "x"), f.Feed($"{c}.weight", "weight"));
            Check.Close(f.F32($"{c}.out"), actual, 2e-6f, 5e-6f, $"rms_norm {c}");
        }
    }

    [Fact]
    public void RejectsMissingLastDimMatch()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 5);
        var w = g.Input("w", DType.F32, 2, 5);
        var ex = Assert.Throws<ArgumentException>(() => g.RmsNorm(x, w));
        Assert.Contains("rms_norm: weight is F32[2, 5] but x F32[2, 5] needs [5]", ex.Message);
    }
}
