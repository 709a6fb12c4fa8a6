using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class SoftmaxGradientTests
{
    /// <summary>
    /// Expected dx is torch autograd in float64. dx = y · (dy - Σ dy·y): the f32 softmax output (relative error a few
    /// 1e-7) times a difference whose f32 sum (up to 1023 terms of size |dy| ~ 1) is off by a few 1e-7 absolutely, which
    /// dominates where dy is close to the sum. -inf entries have y = 0 and so a zero gradient.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SoftmaxBackwardOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("softmax_grad");
        foreach (string c in f.Cases)
        {
            var grads = TorchBackward.Run(backend, (g, i) => g.Softmax(i[0]), [f.Feed($"{c}.x", "x")], f.F32($"{c}.dy"), "x");
            Check.Close(f.F32($"{c}.dx"), grads["x"], 1e-6f, 1e-5f, $"{backend} softmax {c}: dx");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SoftmaxBackwardOp), MemberType = typeof(TestBackends))]
    public void PassesGradCheck(string backend)
    {
        var random = new Random(31);
        GradCheck.Run(backend, (g, i) => g.Softmax(i[0]), [Feed.Uniform(random, 3f, "x", 3, 11)]);
    }

    /// <summary>Between other ops the backward op overwrites dy; results must not change.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SoftmaxBackwardOp), MemberType = typeof(TestBackends))]
    public void RunsInPlaceOverDy(string backend)
    {
        using var device = TestBackends.Create(backend);
        var g = new GraphBuilder();
        var y = g.Input("y", DType.F32, 2, 3);
        var dy = g.Scale(g.Input("dy", DType.F32, 2, 3), 1f);
        var dx = g.Apply(SoftmaxBackwardOp.Instance, y, dy);
        g.Output("dx", g.Scale(dx, 1f));
        using var plan = g.Compile(device);
        Assert.Equal(plan.Memory.ValueByteOffsets[dy.Id], plan.Memory.ValueByteOffsets[dx.Id]);
        plan.SetInput<float>("y", [0.1f, 0.2f, 0.7f, 0.25f, 0.25f, 0.5f]);
        plan.SetInput<float>("dy", [1f, -2f, 0.5f, 3f, -1f, 1f]);
        plan.Run();
        // Row 0: Σ dy·y = 0.1 - 0.4 + 0.35 = 0.05; row 1: 0.75 - 0.25 + 0.5 = 1.
        float[] expected = [0.1f * 0.95f, 0.2f * -2.05f, 0.7f * 0.45f, 0.25f * 2f, 0.25f * -2f, 0.5f * 0f];
        Check.Close(expected, plan.ReadOutput<float>("dx"), 1e-6f, 1e-6f, $"{backend} softmax_backward in place");
    }

    [Fact]
    public void RejectsOutputGradientOfWrongShape()
    {
        var g = new GraphBuilder();
        var y = g.Input("y", DType.F32, 2, 5);
        var dy = g.Input("dy", DType.F32, 5);
        var ex = Assert.Throws<ArgumentException>(() => g.Apply(SoftmaxBackwardOp.Instance, y, dy));
        Assert.Contains("softmax_backward: dy is F32[5] but y is F32[2, 5]", ex.Message);
    }
}
