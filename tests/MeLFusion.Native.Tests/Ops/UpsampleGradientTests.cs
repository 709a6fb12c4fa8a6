using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class UpsampleGradientTests
{
    /// <summary>dx is the sum of a 2x2 block of dy; torch's in float64 differs only by f32 rounding of three additions.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(UpsampleNearest2xOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("upsample_grad");
        foreach (string c in f.Cases)
        {
            var dx = GradientFixtureRunner.Gradients(backend, (g, i) => g.UpsampleNearest2x(i[0]),
                [f.Feed($"{c}.x", "x")], f.Feed($"{c}.dy", "dy"), "x")[0];
            Check.Close(f.F32($"{c}.dx"), dx, 2e-6f, 1e-6f, $"{backend}: upsample {c} dx");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(UpsampleNearest2xOp), MemberType = typeof(TestBackends))]
    public void GradCheck(string backend)
    {
        var random = new Random(32);
        Support.GradCheck.Run(backend, (g, i) => g.UpsampleNearest2x(g.Mul(i[0], i[0])), [Feed.Uniform(random, 1f, "x", 1, 2, 3, 2)]);
    }
}
