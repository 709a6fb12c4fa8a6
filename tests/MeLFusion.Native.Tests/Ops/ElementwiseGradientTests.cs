using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Finite-difference checks of the elementwise gradients, broadcasting included.</summary>
public class ElementwiseGradientTests
{
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(BinaryOp), MemberType = typeof(TestBackends))]
    public void BinaryOpsWithBroadcasting(string backend)
    {
        var random = new Random(5);
        var a = Feed.Uniform(random, 1f, "a", 2, 3, 5);
        var b = Feed.Uniform(random, 1f, "b", 3, 1);
        GradCheck.Run(backend, (g, i) => g.Sub(g.Mul(g.Add(i[0], i[1]), i[1]), i[0]), [a, b]);
        // Divisors kept away from 0 so the finite difference stays in the smooth region.
        var d = new Feed("d", [5], [.. Enumerable.Range(0, 5).Select(k => 1.5f + 0.25f * k)]);
        GradCheck.Run(backend, (g, i) => g.Div(i[0], i[1]), [a, d]);
    }

    /// <summary>
    /// The left operand broadcast (its gradient summed back), both operands broadcast at once, and a permuted view read
    /// in place (its gradient sent back through the view).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(BinaryOp), MemberType = typeof(TestBackends))]
    public void BinaryOpsWithABroadcastLeftOperandAndStridedViews(string backend)
    {
        var random = new Random(7);
        var row = Feed.Uniform(random, 1f, "row", 1, 5);
        var column = Feed.Uniform(random, 1f, "column", 3, 1);
        GradCheck.Run(backend, (g, i) => g.Mul(g.Add(i[0], i[1]), i[0]), [row, column]);
        var divisors = new Feed("d", [3, 5], [.. Enumerable.Range(0, 15).Select(k => (k % 2 == 0 ? 1f : -1f) * (1.5f + 0.1f * k))]);
        GradCheck.Run(backend, (g, i) => g.Div(i[0], i[1]), [column, divisors]);
        var transposed = Feed.Uniform(random, 1f, "transposed", 5, 3);
        GradCheck.Run(backend, (g, i) => g.Sub(g.Mul(g.Permute(i[0], 1, 0), i[1]), g.Permute(i[0], 1, 0)), [transposed, row]);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ScalarOp), MemberType = typeof(TestBackends))]
    public void ScaleAndShift(string backend)
    {
        var random = new Random(6);
        GradCheck.Run(backend, (g, i) => g.AddScalar(g.Scale(g.Mul(i[0], i[0]), -0.75f), 2f), [Feed.Uniform(random, 1f, "x", 4, 6)]);
    }

    /// <summary>Values sit at least 0.05 from the bounds, so the ±0.01 finite difference never crosses one.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ClampGradientOp), MemberType = typeof(TestBackends))]
    public void ClampPassesTheGradientInsideTheBoundsOnly(string backend)
    {
        float[] values = [.. Enumerable.Range(0, 24).Select(i => -1.2f + 0.1f * i + 0.05f)];
        GradCheck.Run(backend, (g, i) => g.Mul(g.Clamp(i[0], -0.5f, 0.7f), i[0]), [new Feed("x", [4, 6], values)]);
    }
}
