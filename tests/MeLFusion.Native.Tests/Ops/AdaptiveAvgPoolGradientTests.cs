using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class AdaptiveAvgPoolGradientTests
{
    // dx sums at most 9 weighted dy values of unit scale (at most 3 bins per dim, two dims), against torch in float64:
    // f32 rounding stays below 1e-6; a wrong bin range or weight is off by O(0.1).
    private const float Atol = 2e-6f, Rtol = 1e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdaptiveAvgPoolGradientOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("adaptive_avg_pool_grad");
        foreach (string c in f.Cases)
        {
            Func<GraphBuilder, Value[], Value> pool = f.Meta($"{c}.kind") == "1d"
                ? (g, i) => g.AdaptiveAvgPool1d(i[0], f.MetaInt($"{c}.axis"), f.MetaInt($"{c}.size"))
                : (g, i) => g.AdaptiveAvgPool2d(i[0], f.MetaInt($"{c}.out_h"), f.MetaInt($"{c}.out_w"));
            var dx = GradientFixtureRunner.Gradients(backend, pool, [f.Feed($"{c}.x", "x")], f.Feed($"{c}.dy", "dy"), "x")[0];
            Check.Close(f.F32($"{c}.dx"), dx, Atol, Rtol, $"{backend}: {c} dx");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdaptiveAvgPoolGradientOp), MemberType = typeof(TestBackends))]
    public void GradCheck1dAnd2d(string backend)
    {
        var random = new Random(31);
        GradCheck.Run(backend, (g, i) => g.AdaptiveAvgPool1d(i[0], 1, 3), [Feed.Uniform(random, 1f, "x", 2, 5, 3)]);
        GradCheck.Run(backend, (g, i) => g.AdaptiveAvgPool2d(i[0], 4, 2), [Feed.Uniform(random, 1f, "x", 2, 3, 5)]);
    }

    /// <summary>1-D along a negative axis with more bins than inputs (overlapping bins repeat inputs).</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdaptiveAvgPoolGradientOp), MemberType = typeof(TestBackends))]
    public void GradCheck1dOnANegativeAxisWithMoreBinsThanInputs(string backend)
    {
        var random = new Random(32);
        GradCheck.Run(backend, (g, i) => g.AdaptiveAvgPool1d(i[0], -1, 5), [Feed.Uniform(random, 1f, "x", 2, 3, 3)]);
    }

    [Fact]
    public void RejectsBadInputs()
    {
        AssertRejected("adaptive_avg_pool2d_backward: supports f32 only, got dy F16[1, 3, 2]", g =>
            g.Apply(new AdaptiveAvgPoolGradientOp(-2, [5, 4]), g.Input("dy", DType.F16, 1, 3, 2)));
        AssertRejected("adaptive_avg_pool1d_backward: cannot spread 1 dim(s) from axis 3 of dy F32[2, 3]", g =>
            g.Apply(new AdaptiveAvgPoolGradientOp(3, [5]), g.Input("dy", DType.F32, 2, 3)));
        AssertRejected("adaptive_avg_pool1d_backward: pooled dim 0 of dy F32[0, 3] is empty", g =>
            g.Apply(new AdaptiveAvgPoolGradientOp(0, [5]), g.Input("dy", DType.F32, 0, 3)));
        AssertRejected("adaptive_avg_pool_backward: needs one or two positive input sizes, got [5, 0]", _ =>
            new AdaptiveAvgPoolGradientOp(-2, [5, 0]));
    }

    private static void AssertRejected(string message, Action<GraphBuilder> build) =>
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => build(new GraphBuilder())).Message);
}
