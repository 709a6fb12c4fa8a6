using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class SoftmaxTests
{
    /// <summary>
    /// Expected values are torch's softmax in float64. Each output is e^(x - max) (relative error ~2e-7) times
    /// 1/sum (f32 sum of at most 1023 terms): relative error a few 1e-7, plus an absolute floor for tiny outputs.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SoftmaxOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("softmax");
        foreach (string c in f.Cases)
        {
            var actual = OpRunner.Run(backend, (g, inputs) => g.Softmax(inputs[0]), f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 1e-8f, 2e-6f, $"softmax {c}");
        }
    }

    /// <summary>Between two other ops the planner lets the output overwrite its input; results must not change.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void RunsInPlaceBetweenOps(string backend)
    {
        using var f = Fixture.Open("softmax");
        var actual = OpRunner.Run(backend, (g, i) => g.Scale(g.Softmax(g.AddScalar(i[0], 0f)), 1f), f.Feed("len1023.x", "x"));
        Check.Close(f.F32("len1023.out"), actual, 1e-8f, 2e-6f, "softmax in place");
    }

    [Fact]
    public void RejectsIntegerInput()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.I32, 4, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.Softmax(x));
        Assert.Contains("softmax: x is I32[4, 4]; only F32 is supported", ex.Message);
    }
}
