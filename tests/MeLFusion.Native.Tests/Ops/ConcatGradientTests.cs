using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class ConcatGradientTests
{
    /// <summary>Each part's gradient is its band of dy: exact, empty parts included.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ConcatOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("concat_grad");
        foreach (string c in f.Cases)
        {
            int axis = f.MetaInt($"{c}.axis");
            var names = Enumerable.Range(0, f.MetaInt($"{c}.parts")).Select(p => $"part{p}").ToArray();
            var grads = GradientFixtureRunner.Gradients(backend, (g, i) => g.Concat(axis, i),
                [.. names.Select(n => f.Feed($"{c}.{n}", n))], f.Feed($"{c}.dy", "dy"), names);
            for (int p = 0; p < names.Length; p++)
                Check.Close(f.F32($"{c}.d{names[p]}"), grads[p], 0f, 0f, $"{backend}: concat {c} d{names[p]}");
        }
    }

    /// <summary>A part used twice (its bands add up) beside a part without a gradient.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ConcatOp), MemberType = typeof(TestBackends))]
    public void GradCheck(string backend)
    {
        var random = new Random(34);
        Support.GradCheck.Run(backend, (g, i) => g.Concat(1, g.Mul(i[0], i[0]), i[1], i[0]),
            [Feed.Uniform(random, 1f, "a", 2, 3, 2), Feed.Uniform(random, 1f, "b", 2, 1, 2)], differentiate: ["a"]);
    }

    /// <summary>A negative axis (the last), every part differentiated.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ConcatOp), MemberType = typeof(TestBackends))]
    public void GradCheckAlongANegativeAxis(string backend)
    {
        var random = new Random(37);
        Support.GradCheck.Run(backend, (g, i) => g.Concat(-1, i[0], g.Mul(i[1], i[1])),
            [Feed.Uniform(random, 1f, "a", 3, 2), Feed.Uniform(random, 1f, "b", 3, 4)]);
    }
}
