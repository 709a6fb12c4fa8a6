using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Ops;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Training;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Training;

public class CrossEntropyTests
{
    /// <summary>
    /// Loss and d loss / d logits against F.cross_entropy and its autograd (tools/reference/losses.py), including
    /// logits near 120, where an unshifted exp overflows f32.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SoftmaxBackwardOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("cross_entropy");
        Assert.Equal(["one_hot", "large_logits", "soft_targets", "single_row"], f.Cases);
        foreach (string c in f.Cases)
        {
            var result = TorchBackward.Run(backend, (g, i) => Losses.CrossEntropy(g, i[0], i[1]),
                [f.Feed($"{c}.logits", "logits"), f.Feed($"{c}.targets", "targets")], [1f], "logits");
            Check.Close(f.F32($"{c}.loss"), result["y"], 1e-6f, 1e-5f, $"{backend} cross-entropy {c}: loss");
            Check.Close(f.F32($"{c}.grad"), result["logits"], 1e-6f, 1e-5f, $"{backend} cross-entropy {c}: d/dlogits");
        }
    }

    [Fact]
    public void PassesGradCheck()
    {
        var random = new Random(5);
        var targets = new float[3 * 4];
        for (int row = 0; row < 3; row++) targets[row * 4 + random.Next(4)] = 1f;
        GradCheck.Run("cpu", (g, i) => Losses.CrossEntropy(g, i[0], i[1]),
            [Feed.Uniform(random, 2f, "logits", 3, 4), new Feed("targets", [3, 4], targets)], differentiate: ["logits"]);
    }

    [Fact]
    public void RejectsMismatchedShapes()
    {
        var g = new GraphBuilder();
        var e = Assert.Throws<ArgumentException>(() =>
            Losses.CrossEntropy(g, g.Input("logits", DType.F32, 2, 5), g.Input("targets", DType.F32, 2, 4)));
        Assert.Contains("cross-entropy: logits [2, 5] and targets [2, 4]", e.Message);
    }
}
