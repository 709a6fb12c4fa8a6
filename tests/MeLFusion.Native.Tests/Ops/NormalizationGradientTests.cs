using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Gradients of group, layer and RMS norm against torch autograd, finite differences, and bad inputs.</summary>
public class NormalizationGradientTests
{
    /// <summary>
    /// Expected gradients are torch autograd in float64. dx is rstd · (g - mean g - x̂ · mean g·x̂): f32 sums over a group
    /// (up to 1920 elements here) and a few roundings per element; dweight and dbias are sums over the batch and
    /// positions. The large_mean case (mean 1000, std 2) carries the f32 mean's half-ulp error (3e-5) through x̂.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GroupNormParamGradientOp), MemberType = typeof(TestBackends))]
    public void GroupNormMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("group_norm_grad");
        foreach (string c in f.Cases)
        {
            bool hasWeight = f.Has($"{c}.weight"), hasBias = f.Has($"{c}.bias");
            int groups = f.MetaInt($"{c}.groups");
            float eps = f.MetaFloat($"{c}.eps");
            bool silu = f.MetaBool($"{c}.silu");
            var feeds = AffineFeeds(f, c, hasWeight, hasBias);
            var grads = TorchBackward.Run(backend, (g, i) =>
                g.GroupNorm(i[0], hasWeight ? i[1] : null, hasBias ? i[^1] : null, groups, eps, silu),
                feeds, f.F32($"{c}.dy"), [.. feeds.Select(feed => feed.Name)]);
            float atol = c == "large_mean" ? 2e-4f : 2e-5f;
            foreach (var feed in feeds)
                Check.Close(f.F32($"{c}.d{feed.Name}"), grads[feed.Name], atol, 1e-4f, $"{backend} group_norm {c}: d{feed.Name}");
        }
    }

    /// <summary>As for group norm, over rows of the last dim; many_rows spans four 32-row chunks, the last partial.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LayerNormParamGradientOp), MemberType = typeof(TestBackends))]
    public void LayerNormMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("layer_norm_grad");
        foreach (string c in f.Cases)
        {
            bool hasWeight = f.Has($"{c}.weight"), hasBias = f.Has($"{c}.bias");
            float eps = f.MetaFloat($"{c}.eps");
            var feeds = AffineFeeds(f, c, hasWeight, hasBias);
            var grads = TorchBackward.Run(backend, (g, i) =>
                g.LayerNorm(i[0], hasWeight ? i[1] : null, hasBias ? i[^1] : null, eps),
                feeds, f.F32($"{c}.dy"), [.. feeds.Select(feed => feed.Name)]);
            float atol = c.StartsWith("large_mean", StringComparison.Ordinal) ? 1e-4f : 2e-5f;
            foreach (var feed in feeds)
                Check.Close(f.F32($"{c}.d{feed.Name}"), grads[feed.Name], atol, 1e-4f, $"{backend} layer_norm {c}: d{feed.Name}");
        }
    }

    /// <summary>
    /// x * rsqrt(mean x² + eps) * weight. The small-values case (x ~ 1e-3, so x² ~ eps) has dx ~ 1e3 · dy; tolerances
    /// are relative to each gradient's scale.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(RmsNormWeightGradientOp), MemberType = typeof(TestBackends))]
    public void RmsNormMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("rms_norm_grad");
        foreach (string c in f.Cases)
        {
            float eps = f.MetaFloat($"{c}.eps");
            var feeds = AffineFeeds(f, c, hasWeight: true, hasBias: false);
            var grads = TorchBackward.Run(backend, (g, i) => g.RmsNorm(i[0], i[1], eps), feeds, f.F32($"{c}.dy"), "x", "weight");
            foreach (var name in new[] { "x", "weight" })
            {
                var expected = f.F32($"{c}.d{name}");
                float scale = expected.Max(MathF.Abs);
                Check.Close(expected, grads[name], 2e-5f * scale, 1e-4f, $"{backend} rms_norm {c}: d{name}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GroupNormParamGradientOp), MemberType = typeof(TestBackends))]
    public void GroupNormWithSiluPassesGradCheck(string backend)
    {
        var random = new Random(21);
        Feed[] feeds = [Feed.Uniform(random, 2f, "x", 2, 4, 3, 2), Feed.Uniform(random, 1f, "weight", 4), Feed.Uniform(random, 1f, "bias", 4)];
        GradCheck.Run(backend, (g, i) => g.GroupNorm(i[0], i[1], i[2], groups: 2, silu: true), feeds, step: 1e-2f);
    }

    /// <summary>
    /// The affine parts one at a time and not at all, with and without the fused SiLU, on x with one, no and two
    /// spatial dims.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GroupNormParamGradientOp), MemberType = typeof(TestBackends))]
    public void GroupNormWithoutAffineOrSiluPassesGradCheck(string backend)
    {
        var random = new Random(24);
        GradCheck.Run(backend, (g, i) => g.GroupNorm(i[0], null, null, groups: 4), [Feed.Uniform(random, 2f, "x", 2, 4, 5)]);
        GradCheck.Run(backend, (g, i) => g.GroupNorm(i[0], i[1], null, groups: 2, silu: true),
            [Feed.Uniform(random, 2f, "x", 3, 6), Feed.Uniform(random, 1f, "weight", 6)]);
        GradCheck.Run(backend, (g, i) => g.GroupNorm(i[0], null, i[1], groups: 2),
            [Feed.Uniform(random, 2f, "x", 2, 4, 3, 2), Feed.Uniform(random, 1f, "bias", 4)]);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LayerNormParamGradientOp), MemberType = typeof(TestBackends))]
    public void LayerNormPassesGradCheck(string backend)
    {
        var random = new Random(22);
        Feed[] feeds = [Feed.Uniform(random, 2f, "x", 3, 9), Feed.Uniform(random, 1f, "weight", 9), Feed.Uniform(random, 1f, "bias", 9)];
        GradCheck.Run(backend, (g, i) => g.LayerNorm(i[0], i[1], i[2]), feeds);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LayerNormParamGradientOp), MemberType = typeof(TestBackends))]
    public void LayerNormWithoutAffineOrWithOnePartPassesGradCheck(string backend)
    {
        var random = new Random(25);
        GradCheck.Run(backend, (g, i) => g.LayerNorm(i[0], null, null), [Feed.Uniform(random, 2f, "x", 2, 3, 5)]);
        GradCheck.Run(backend, (g, i) => g.LayerNorm(i[0], i[1], null), [Feed.Uniform(random, 2f, "x", 4, 6), Feed.Uniform(random, 1f, "weight", 6)]);
        GradCheck.Run(backend, (g, i) => g.LayerNorm(i[0], null, i[1]), [Feed.Uniform(random, 2f, "x", 4, 6), Feed.Uniform(random, 1f, "bias", 6)]);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(RmsNormWeightGradientOp), MemberType = typeof(TestBackends))]
    public void RmsNormPassesGradCheck(string backend)
    {
        var random = new Random(23);
        Feed[] feeds = [Feed.Uniform(random, 2f, "x", 4, 7), Feed.Uniform(random, 1f, "weight", 7)];
        GradCheck.Run(backend, (g, i) => g.RmsNorm(i[0], i[1]), feeds);
    }

    /// <summary>Only what is asked for is built: no parameter-gradient op for dx alone, no dx op for the weight alone.</summary>
    [Fact]
    public void AppendsOnlyTheNeededGradientOps()
    {
        static string[] Ops(Func<Value[], Value[]> wrt)
        {
            var g = new GraphBuilder();
            Value[] inputs = [g.Input("x", DType.F32, 2, 4, 3), g.Input("weight", DType.F32, 4), g.Input("bias", DType.F32, 4)];
            var y = g.GroupNorm(inputs[0], inputs[1], inputs[2], groups: 2);
            int before = g.Nodes.Count;
            Autograd.Gradients(g, y, g.Input("dy", DType.F32, 2, 4, 3), wrt(inputs));
            return [.. g.Nodes.Skip(before).Select(n => n.Op.Name)];
        }
        Assert.Equal(["group_norm_input_grad"], Ops(i => [i[0]]));
        Assert.Equal(["group_norm_param_grad"], Ops(i => [i[2]]));
        var all = Ops(i => i);
        Assert.Single(all, "group_norm_param_grad"); // one packed op serves both weight and bias
        Assert.Contains("group_norm_input_grad", all);
    }

    /// <summary>Between other ops the input-gradient op overwrites dy; results must not change.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GroupNormInputGradientOp), MemberType = typeof(TestBackends))]
    public void InputGradientRunsInPlaceOverDy(string backend)
    {
        using var f = Fixture.Open("group_norm_grad");
        const string c = "nchw_silu";
        using var device = TestBackends.Create(backend);
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, f.Shape($"{c}.x"));
        var weight = g.Input("weight", DType.F32, f.Shape($"{c}.weight"));
        var bias = g.Input("bias", DType.F32, f.Shape($"{c}.bias"));
        var dy = g.Scale(g.Input("dy", DType.F32, f.Shape($"{c}.dy")), 1f);
        var forward = new GroupNormOp(f.MetaInt($"{c}.groups"), f.MetaFloat($"{c}.eps"), true, true, silu: true);
        var dx = g.Apply(new GroupNormInputGradientOp(forward), x, weight, bias, dy);
        g.Output("dx", g.Scale(dx, 1f));
        using var plan = g.Compile(device);
        Assert.Equal(plan.Memory.ValueByteOffsets[dy.Id], plan.Memory.ValueByteOffsets[dx.Id]);
        foreach (var name in new[] { "x", "weight", "bias", "dy" }) plan.SetInput<float>(name, f.F32($"{c}.{name}"));
        plan.Run();
        Check.Close(f.F32($"{c}.dx"), plan.ReadOutput<float>("dx"), 2e-5f, 1e-4f, $"{backend} group_norm_input_grad in place");
    }

    [Fact]
    public void RejectsOutputGradientOfWrongShape()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 4, 3);
        var dy = g.Input("dy", DType.F32, 2, 4, 2);
        var ex = Assert.Throws<ArgumentException>(() => g.Apply(new GroupNormInputGradientOp(new GroupNormOp(2, 1e-5f, false, false, false)), x, dy));
        Assert.Contains("group_norm_input_grad: dy is F32[2, 4, 2] but group_norm of x F32[2, 4, 3] gives F32[2, 4, 3]", ex.Message);
    }

    [Fact]
    public void RejectsMissingParameterInputs()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3, 5);
        var dy = g.Input("dy", DType.F32, 3, 5);
        var ex = Assert.Throws<ArgumentException>(() => g.Apply(new LayerNormParamGradientOp(new LayerNormOp(1e-5f, true, true)), x, dy));
        Assert.Contains("layer_norm_param_grad: layer_norm: expects 3 input(s) (x, weight, bias), got 1", ex.Message);
    }

    [Fact]
    public void RejectsWeightOfWrongLength()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3, 5);
        var weight = g.Input("weight", DType.F32, 4);
        var dy = g.Input("dy", DType.F32, 3, 5);
        var ex = Assert.Throws<ArgumentException>(() => g.Apply(new RmsNormWeightGradientOp(new RmsNormOp(1e-6f)), x, weight, dy));
        Assert.Contains("rms_norm_weight_grad: rms_norm: weight is F32[4] but x F32[3, 5] needs [5]", ex.Message);
    }

    private static Feed[] AffineFeeds(Fixture f, string c, bool hasWeight, bool hasBias) =>
    [
        f.Feed($"{c}.x", "x"),
        .. hasWeight ? [f.Feed($"{c}.weight", "weight")] : Array.Empty<Feed>(),
        .. hasBias ? [f.Feed($"{c}.bias", "bias")] : Array.Empty<Feed>(),
    ];
}
