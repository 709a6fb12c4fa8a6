using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ReduceTests
{
    /// <summary>Expected: torch's sum_to_size in float64. Ours accumulates in double (cpu) or f32 per thread and block
    /// (cuda) over at most 378 terms of |x| ~ 1: 1e-5 absolute covers f32 accumulation with margin.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ReduceSumOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchSumToSize(string backend)
    {
        using var f = Fixture.Open("reduce_sum");
        foreach (string c in f.Cases)
        {
            var target = f.Shape($"{c}.out");
            var actual = OpRunner.Run(backend, (g, i) => g.SumTo(i[0], target), f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 1e-5f, 1e-5f, $"reduce_sum {c}");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ReduceSumOp), MemberType = typeof(TestBackends))]
    public void GradientBroadcastsBack(string backend)
    {
        var random = new Random(3);
        GradCheck.Run(backend, (g, i) => g.SumTo(g.Mul(i[0], i[0]), [1, 4, 1]), [OpRunner.Feed.Uniform(random, 1f, "x", 3, 4, 5)]);
    }

    /// <summary>A sum to a single element of higher rank than x: the gradient is reshaped to x's rank before it is expanded.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ReduceSumOp), MemberType = typeof(TestBackends))]
    public void GradientOfASumToMoreDimsThanX(string backend)
    {
        var random = new Random(4);
        GradCheck.Run(backend, (g, i) => g.Mul(g.SumTo(g.Mul(i[0], i[0]), [1, 1, 1]), i[1]),
            [OpRunner.Feed.Uniform(random, 1f, "x", 5), OpRunner.Feed.Uniform(random, 1f, "scale", 2, 1, 3)]);
    }

    [Fact]
    public void RejectsTargetsThatAreNotABroadcastOfX()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.SumTo(x, [3, 2]));
        Assert.Contains("reduce_sum: x [3, 4] cannot be summed to [3, 2]", ex.Message);
    }
}
