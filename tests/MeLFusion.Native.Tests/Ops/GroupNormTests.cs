using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class GroupNormTests
{
    /// <summary>
    /// Expected values are torch's group_norm in float64. The f32 error comes from the sums over a group (up to 6138
    /// elements here) and a few roundings per element: observed under 1e-6 for outputs of magnitude up to ~5. In the
    /// large_mean case (mean 1000, std 2) the f32 mean itself is only known to half an ulp of 1000 (3e-5), which
    /// x - mean carries into the output scaled by weight / std: observed 6e-5.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GroupNormOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("group_norm");
        foreach (string c in f.Cases)
        {
            bool hasWeight = f.Has($"{c}.weight"), hasBias = f.Has($"{c}.bias");
            var feeds = new List<OpRunner.Feed> { f.Feed($"{c}.x", "x") };
            if (hasWeight) feeds.Add(f.Feed($"{c}.weight", "weight"));
            if (hasBias) feeds.Add(f.Feed($"{c}.bias", "bias"));
            int groups = f.MetaInt($"{c}.groups");
            float eps = f.MetaFloat($"{c}.eps");
            bool silu = f.MetaBool($"{c}.silu");
            var actual = OpRunner.Run(backend, (g, inputs) =>
                g.GroupNorm(inputs[0], hasWeight ? inputs[1] : null, hasBias ? inputs[^1] : null, groups, eps, silu), feeds.ToArray());
            float atol = c == "large_mean" ? 1.2e-4f : 5e-6f;
            Check.Close(f.F32($"{c}.out"), actual, atol, 1e-5f, $"group_norm {c}");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GroupNormOp), MemberType = typeof(TestBackends))]
    public void SiluIsFusedEquivalentOfSeparateOps(string backend)
    {
        using var f = Fixture.Open("group_norm");
        var feeds = new[] { f.Feed("unet_like_silu.x", "x"), f.Feed("unet_like_silu.weight", "weight"), f.Feed("unet_like_silu.bias", "bias") };
        var fused = OpRunner.Run(backend, (g, i) => g.GroupNorm(i[0], i[1], i[2], 32, 1e-6f, silu: true), feeds);
        var separate = OpRunner.Run(backend, (g, i) => g.Silu(g.GroupNorm(i[0], i[1], i[2], 32, 1e-6f)), feeds);
        Check.Close(separate, fused, 0f, 0f, "fused vs separate SiLU");
    }

    /// <summary>
    /// Between two other ops (graph inputs and outputs are pinned) the planner lets the output overwrite its input;
    /// the test checks that it did, and that results do not change.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void RunsInPlaceBetweenOps(string backend)
    {
        using var f = Fixture.Open("group_norm");
        using var device = TestBackends.Create(backend);
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, f.Shape("nchw.x"));
        var weight = g.Input("weight", DType.F32, 6);
        var bias = g.Input("bias", DType.F32, 6);
        var scaled = g.Scale(x, 1f);
        var normed = g.GroupNorm(scaled, weight, bias, 3, 1e-5f);
        g.Output("out", g.Scale(normed, 1f));
        using var plan = g.Compile(device);
        Assert.Equal(plan.Memory.ValueByteOffsets[scaled.Id], plan.Memory.ValueByteOffsets[normed.Id]);
        plan.SetInput<float>("x", f.F32("nchw.x"));
        plan.SetInput<float>("weight", f.F32("nchw.weight"));
        plan.SetInput<float>("bias", f.F32("nchw.bias"));
        plan.Run();
        Check.Close(f.F32("nchw.out"), plan.ReadOutput<float>("out"), 5e-6f, 1e-5f, "group_norm in place");
    }

    [Fact]
    public void RejectsChannelsNotDivisibleByGroups()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 6, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.GroupNorm(x, null, null, groups: 4));
        Assert.Contains("group_norm", ex.Message);
        Assert.Contains("[1, 6, 4]", ex.Message);
    }

    [Fact]
    public void RejectsWeightOfWrongLength()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 8, 3, 3);
        var w = g.Input("w", DType.F32, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.GroupNorm(x, w, null, groups: 2));
        Assert.Contains("group_norm: weight is F32[4]", ex.Message);
        Assert.Contains("[8]", ex.Message);
    }

    [Fact]
    public void RejectsNonFloatInput()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F16, 1, 4, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.GroupNorm(x, null, null, groups: 2));
        Assert.Contains("group_norm: x is F16[1, 4, 4]", ex.Message);
    }
}
