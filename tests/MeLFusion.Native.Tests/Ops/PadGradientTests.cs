using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class PadGradientTests
{
    /// <summary>dx is the window of dy that x was copied into: exact.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Pad2dOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("pad_grad");
        foreach (string c in f.Cases)
        {
            var pad = f.Meta($"{c}.pad").Split(',').Select(int.Parse).ToArray();
            var dx = GradientFixtureRunner.Gradients(backend, (g, i) => g.Pad2d(i[0], pad[0], pad[1], pad[2], pad[3]),
                [f.Feed($"{c}.x", "x")], f.Feed($"{c}.dy", "dy"), "x")[0];
            Check.Close(f.F32($"{c}.dx"), dx, 0f, 0f, $"{backend}: pad {c} dx");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Pad2dOp), MemberType = typeof(TestBackends))]
    public void GradCheck(string backend)
    {
        var random = new Random(33);
        Support.GradCheck.Run(backend, (g, i) => g.Pad2d(g.Mul(i[0], i[0]), 1, 2, 0, 3), [Feed.Uniform(random, 1f, "x", 2, 3, 4)]);
    }
}
