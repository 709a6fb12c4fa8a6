using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>
/// Gradients of conv2d, conv1d and conv_transpose1d: torch autograd goldens (tools/reference/conv_grad.py), finite
/// differences, chunked CPU kernels against direct loops, and shape errors of the gradient ops.
/// </summary>
public class ConvGradientTests
{
    // The goldens are float64. dx sums at most Cout·taps = 99 products per element; the weight gradient sums up to
    // batch·positions = 600 products of O(1) terms (magnitudes up to ~30), so f32 summation-order error reaches ~1e-5
    // of that magnitude.
    private const float InputTolerance = 1e-5f;
    private const float WeightTolerance = 5e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv2dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void Conv2dMatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("conv_grad");
        foreach (var c in GradientCase.All(fixture, "conv2d_"))
        {
            int stride = fixture.MetaInt($"{c.Name}.stride"), padding = fixture.MetaInt($"{c.Name}.padding");
            c.Check(backend, (g, v) => g.Conv2d(v["x"], v["weight"], v.GetValueOrDefault("bias"), stride, padding, v.GetValueOrDefault("residual")));
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void Conv1dMatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("conv_grad");
        foreach (var c in GradientCase.All(fixture, "conv1d_"))
        {
            int stride = fixture.MetaInt($"{c.Name}.stride"), padding = fixture.MetaInt($"{c.Name}.padding");
            int dilation = fixture.MetaInt($"{c.Name}.dilation");
            float? slope = Slope(fixture, c.Name);
            bool residualIsX = fixture.MetaBool($"{c.Name}.residual_is_x");
            c.Check(backend, (g, v) => g.Conv1d(v["x"], v["weight"], v.GetValueOrDefault("bias"), stride, padding, dilation, slope,
                residualIsX ? v["x"] : v.GetValueOrDefault("residual")));
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void ConvTranspose1dMatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("conv_grad");
        foreach (var c in GradientCase.All(fixture, "convt1d_"))
        {
            int stride = fixture.MetaInt($"{c.Name}.stride"), padding = fixture.MetaInt($"{c.Name}.padding");
            int outputPadding = fixture.MetaInt($"{c.Name}.output_padding");
            float? slope = Slope(fixture, c.Name);
            c.Check(backend, (g, v) => g.ConvTranspose1d(v["x"], v["weight"], v.GetValueOrDefault("bias"), stride, padding, outputPadding, slope));
        }
    }

    /// <summary>The goldens reach both CPU plans and, on CUDA, a weight gradient cut into several slices, in 1-D and 2-D.</summary>
    [Fact]
    public void FixtureCoversEveryPlan()
    {
        using var fixture = Fixture.Open("conv_grad");
        var conv2d = GradientCase.All(fixture, "conv2d_").Select(c =>
        {
            var op = new Conv2dWeightGradientOp(c.Shape("weight")[2], c.Shape("weight")[3], fixture.MetaInt($"{c.Name}.stride"),
                fixture.MetaInt($"{c.Name}.padding"));
            return op.Geometry(new TensorShape(c.Shape("x")), new TensorShape(c.Shape("dy")));
        }).ToArray();
        var conv1d = GradientCase.All(fixture, "conv1d_").Select(c =>
        {
            var op = new Conv1dWeightGradientOp(c.Shape("weight")[2], fixture.MetaInt($"{c.Name}.stride"), fixture.MetaInt($"{c.Name}.padding"),
                fixture.MetaInt($"{c.Name}.dilation"), Slope(fixture, c.Name));
            return (Geometry: op.Geometry(new TensorShape(c.Shape("x")), new TensorShape(c.Shape("dy"))), Slope: Slope(fixture, c.Name));
        }).ToArray();
        Assert.Contains(conv2d, g => ConvGradientPlan.Of(g).Pointwise);
        Assert.Contains(conv2d, g => !ConvGradientPlan.Of(g).Pointwise);
        Assert.Contains(conv1d, c => ConvGradientPlan.Of(c.Geometry, c.Slope.HasValue).Pointwise);
        Assert.Contains(conv1d, c => !ConvGradientPlan.Of(c.Geometry, c.Slope.HasValue).Pointwise);
        Assert.Contains(conv2d, g => ConvWeightGradientSlices.Of(g).Count > 1);
        Assert.Contains(conv1d, c => ConvWeightGradientSlices.Of(c.Geometry).Count > 1);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv2dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void Conv2dFiniteDifferences(string backend)
    {
        var random = new Random(11);
        Feed x = Feed.Uniform(random, 1f, "x", 2, 3, 6, 5), weight = Feed.Uniform(random, 0.5f, "weight", 4, 3, 3, 3);
        Feed bias = Feed.Uniform(random, 1f, "bias", 4), residual = Feed.Uniform(random, 1f, "residual", 2, 4, 3, 3);
        GradCheck.Run(backend, (g, v) => g.Conv2d(v[0], v[1], v[2], stride: 2, padding: 1, residual: v[3]), [x, weight, bias, residual]);
        GradCheck.Run(backend, (g, v) => g.Conv2d(v[0], v[1]), [x, Feed.Uniform(random, 0.5f, "weight", 2, 3, 1, 1)]);
        // A residual without a bias sits at input 2.
        GradCheck.Run(backend, (g, v) => g.Conv2d(v[0], v[1], padding: 1, residual: v[2]),
            [x, Feed.Uniform(random, 0.5f, "weight", 2, 3, 2, 2), Feed.Uniform(random, 1f, "residual", 2, 2, 7, 6)]);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void Conv1dFiniteDifferences(string backend)
    {
        var random = new Random(12);
        // The leaky-ReLU input stays farther from its kink than the finite-difference step.
        Feed x = AwayFromZero(Feed.Uniform(random, 1f, "x", 2, 3, 13)), weight = Feed.Uniform(random, 0.5f, "weight", 4, 3, 3);
        Feed bias = Feed.Uniform(random, 1f, "bias", 4), residual = Feed.Uniform(random, 1f, "residual", 2, 4, 7);
        GradCheck.Run(backend, (g, v) => g.Conv1d(v[0], v[1], v[2], stride: 2, padding: 2, dilation: 2, inputLeakySlope: 0.1f, residual: v[3]),
            [x, weight, bias, residual]);
        var square = Feed.Uniform(random, 0.5f, "weight", 3, 3, 5);
        GradCheck.Run(backend, (g, v) => g.Conv1d(v[0], v[1], padding: 4, dilation: 2, inputLeakySlope: 0.2f, residual: v[0]), [x, square]);
        // No input activation, a bias and no residual: x's gradient is the convolution's alone.
        GradCheck.Run(backend, (g, v) => g.Conv1d(v[0], v[1], v[2], stride: 3, padding: 1),
            [Feed.Uniform(random, 1f, "x", 2, 3, 13), weight, bias]);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dWeightGradientOp), MemberType = typeof(TestBackends))]
    public void ConvTranspose1dFiniteDifferences(string backend)
    {
        var random = new Random(13);
        Feed x = AwayFromZero(Feed.Uniform(random, 1f, "x", 2, 4, 6)), weight = Feed.Uniform(random, 0.5f, "weight", 4, 3, 5);
        Feed bias = Feed.Uniform(random, 1f, "bias", 3);
        GradCheck.Run(backend, (g, v) => g.ConvTranspose1d(v[0], v[1], v[2], stride: 3, padding: 1, outputPadding: 2, inputLeakySlope: 0.1f),
            [x, weight, bias]);
        GradCheck.Run(backend, (g, v) => g.ConvTranspose1d(v[0], v[1], stride: 2, padding: 3), [x, weight]);
    }

    /// <summary>
    /// Large enough that the CPU kernels split the output into several im2col chunks (Cin·taps = 9 rows: chunks of
    /// 2^21 / 9 = 233016 positions), in 2-D with a chunk boundary inside an output row; against direct loops.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ChunkedMatchesDirectLoops(string backend)
    {
        int[] xShape = [1, 1, 500, 501], wShape = [2, 1, 3, 3], yShape = [1, 2, 500, 501];
        var g2 = new Conv2dWeightGradientOp(3, 3, 1, 1).Geometry(new TensorShape(xShape), new TensorShape(yShape));
        Assert.InRange(ConvGradientPlan.Of(g2).ChunkColumns, 1, 500 * 501 - 1);
        Assert.NotEqual(0, ConvGradientPlan.Of(g2).ChunkColumns % 501);
        var x = NaiveConv.Random(500 * 501, 1);
        var w = NaiveConv.Random(18, 2);
        var dy = NaiveConv.Random(2 * 500 * 501, 3);
        var (dx, dw) = DirectGradients.Conv2d(x, xShape, w, wShape, dy, stride: 1, padding: 1);
        Check.Close(dx, Run(backend, (g, v) => g.Conv2dInputGradient(v[0], v[1], 500, 501, 1, 1), new Feed("dy", yShape, dy), new Feed("w", wShape, w)),
            InputTolerance, InputTolerance, "conv2d dx in chunks");
        Check.Close(dw, Run(backend, (g, v) => g.Conv2dWeightGradient(v[0], v[1], 3, 3, 1, 1), new Feed("x", xShape, x), new Feed("dy", yShape, dy)),
            1e-3f, 1e-4f, "conv2d dweight in chunks");

        int[] x1Shape = [1, 3, 240001], w1Shape = [2, 3, 3], y1Shape = [1, 2, 240001];
        var g1 = new Conv1dWeightGradientOp(3, 1, 2, 2, 0.1f).Geometry(new TensorShape(x1Shape), new TensorShape(y1Shape));
        Assert.InRange(ConvGradientPlan.Of(g1, inputActivation: true).ChunkColumns, 1, 240000);
        var x1 = NaiveConv.Random(3 * 240001, 4);
        var w1 = NaiveConv.Random(18, 5);
        var dy1 = NaiveConv.Random(2 * 240001, 6);
        var (dx1, dw1) = DirectGradients.Conv1d(x1, x1Shape, w1, w1Shape, dy1, stride: 1, padding: 2, dilation: 2, slope: 0.1f);
        Check.Close(dx1, Run(backend, (g, v) => g.Apply(new ActivationGradientOp(Activation.LeakyRelu, 0.1f), v[2], g.Conv1dInputGradient(v[0], v[1], 240001, 1, 2, 2)),
            new Feed("dy", y1Shape, dy1), new Feed("w", w1Shape, w1), new Feed("x", x1Shape, x1)), InputTolerance, InputTolerance, "conv1d dx in chunks");
        Check.Close(dw1, Run(backend, (g, v) => g.Conv1dWeightGradient(v[0], v[1], 3, 1, 2, 2, 0.1f), new Feed("x", x1Shape, x1), new Feed("dy", y1Shape, dy1)),
            1e-3f, 1e-4f, "conv1d dweight in chunks");
    }

    [Fact]
    public void GradientOpsRejectBadShapes()
    {
        void Throws(string op, Func<GraphBuilder, Value> build)
        {
            var e = Assert.Throws<ArgumentException>(() => build(new GraphBuilder()));
            Assert.StartsWith(op + ":", e.Message);
        }
        Value In(GraphBuilder g, string name, params int[] dims) => g.Input(name, DType.F32, dims);

        // Output gradient of the wrong size, channels or rank.
        Throws("conv2d_input_grad", g => g.Conv2dInputGradient(In(g, "dy", 1, 4, 5, 5), In(g, "w", 4, 3, 3, 3), 6, 5, 1, 1));
        Throws("conv2d_input_grad", g => g.Conv2dInputGradient(In(g, "dy", 1, 5, 6, 5), In(g, "w", 4, 3, 3, 3), 6, 5, 1, 1));
        Throws("conv2d_input_grad", g => g.Conv2dInputGradient(In(g, "dy", 4, 6, 5), In(g, "w", 4, 3, 3, 3), 6, 5, 1, 1));
        Throws("conv2d_input_grad", g => g.Conv2dInputGradient(In(g, "dy", 1, 4, 1, 1), In(g, "w", 4, 3, 3, 3), 1, 1, 1, 0));
        Throws("conv2d_weight_grad", g => g.Conv2dWeightGradient(In(g, "x", 1, 3, 6, 5), In(g, "dy", 2, 4, 6, 5), 3, 3, 1, 1));
        Throws("conv2d_weight_grad", g => g.Conv2dWeightGradient(In(g, "x", 1, 3, 6, 5), In(g, "dy", 1, 4, 3, 3), 3, 3, 1, 1));
        Throws("conv2d_weight_grad", g => g.Conv2dWeightGradient(In(g, "x", 3, 6, 5), In(g, "dy", 1, 4, 6, 5), 3, 3, 1, 1));
        Throws("conv1d_input_grad", g => g.Conv1dInputGradient(In(g, "dy", 1, 4, 10), In(g, "w", 4, 3, 3), 13, 1, 1, 2));
        Throws("conv1d_input_grad", g => g.Conv1dInputGradient(In(g, "dy", 1, 4, 9), In(g, "w", 4, 3, 3, 1), 13, 1, 1, 2));
        Throws("conv1d_weight_grad", g => g.Conv1dWeightGradient(In(g, "x", 1, 3, 13), In(g, "dy", 1, 4, 10), 3, 1, 1, 2));
        Throws("conv1d_weight_grad", g => g.Conv1dWeightGradient(In(g, "x", 2, 3, 13), In(g, "dy", 1, 4, 9), 3, 1, 1, 2));
        // Parameters.
        Assert.Throws<ArgumentException>(() => new Conv2dInputGradientOp(0, 5, 1, 0));
        Assert.Throws<ArgumentException>(() => new Conv2dWeightGradientOp(3, 3, 0, 0));
        Assert.Throws<ArgumentException>(() => new Conv1dInputGradientOp(8, 1, -1, 1));
        Assert.Throws<ArgumentException>(() => new Conv1dWeightGradientOp(0, 1, 0, 1, null));
    }

    /// <summary>
    /// A diffusers ResnetBlock2D (group_norm+SiLU, conv3x3, + time_emb_proj(SiLU(temb)), group_norm+SiLU, conv3x3, 1x1
    /// shortcut as residual), as the UNet builds it, against torch autograd for the input, the time embedding and
    /// every parameter.
    /// </summary>
    [Fact]
    public void ResnetBlockMatchesTorch()
    {
        using var fixture = Fixture.Open("conv_grad");
        int groups = fixture.MetaInt("resnet.groups");
        float eps = fixture.MetaFloat("resnet.eps");
        string[] parameters =
        [
            "norm1.weight", "norm1.bias", "conv1.weight", "conv1.bias", "time_emb_proj.weight", "time_emb_proj.bias",
            "norm2.weight", "norm2.bias", "conv2.weight", "conv2.bias", "conv_shortcut.weight", "conv_shortcut.bias",
        ];
        string[] differentiated = ["x", "temb", .. parameters];
        var feeds = differentiated.Append("dy").Select(name => fixture.Feed($"resnet.{name}", name)).ToArray();

        using var backend = TestBackends.Create("cpu");
        var g = new GraphBuilder();
        var v = feeds.ToDictionary(f => f.Name, f => g.Input(f.Name, f.DType, f.Shape));
        int batch = feeds[0].Shape[0], channels = fixture.Shape("resnet.conv1.bias")[0];
        var h = g.GroupNorm(v["x"], v["norm1.weight"], v["norm1.bias"], groups, eps, silu: true);
        h = g.Conv2d(h, v["conv1.weight"], v["conv1.bias"], padding: 1);
        var t = g.Linear(g.Silu(v["temb"]), v["time_emb_proj.weight"], v["time_emb_proj.bias"]);
        h = g.Add(h, g.Reshape(t, batch, channels, 1, 1));
        h = g.GroupNorm(h, v["norm2.weight"], v["norm2.bias"], groups, eps, silu: true);
        var shortcut = g.Conv2d(v["x"], v["conv_shortcut.weight"], v["conv_shortcut.bias"]);
        var y = g.Conv2d(h, v["conv2.weight"], v["conv2.bias"], padding: 1, residual: shortcut);
        g.Output("y", y);
        var gradients = Autograd.Gradients(g, y, v["dy"], differentiated.Select(name => v[name]));
        foreach (var name in differentiated) g.Output("d" + name, gradients[v[name]]);
        using var plan = g.Compile(backend);
        foreach (var f in feeds) SetInput(plan, f);
        plan.Run();

        Check.Close(fixture.F32("resnet.y"), plan.ReadOutput<float>("y"), 1e-4f, 1e-4f, "resnet block y");
        foreach (var name in differentiated)
            Check.Close(fixture.F32($"resnet.d{name}"), plan.ReadOutput<float>("d" + name), 2e-4f, 2e-4f, $"resnet block d{name}");
    }

    private static float? Slope(Fixture fixture, string name) =>
        fixture.Meta($"{name}.slope") is "none" ? null : fixture.MetaFloat($"{name}.slope");

    /// <summary>The feed with every |value| at least 0.05, five finite-difference steps from the leaky-ReLU's kink.</summary>
    private static Feed AwayFromZero(Feed feed) =>
        feed with { Data = [.. feed.Data.Select(v => Math.Abs(v) >= 0.05f ? v : v < 0 ? -0.05f : 0.05f)] };

    /// <summary>One case of the conv_grad fixture: the op's inputs, dy, and torch's gradient of each input.</summary>
    private sealed class GradientCase
    {
        private static readonly string[] InputNames = ["x", "weight", "bias", "residual"];
        private readonly Fixture _fixture;

        private GradientCase(Fixture fixture, string name)
        {
            _fixture = fixture;
            Name = name;
            Inputs = [.. InputNames.Where(input => fixture.Has($"{name}.{input}"))];
        }

        public string Name { get; }
        public string[] Inputs { get; }

        public int[] Shape(string tensor) => _fixture.Shape($"{Name}.{tensor}");

        public static IEnumerable<GradientCase> All(Fixture fixture, string prefix) =>
            fixture.Cases.Where(name => name.StartsWith(prefix, StringComparison.Ordinal)).Select(name => new GradientCase(fixture, name));

        /// <summary>
        /// Builds y from the case's inputs, appends autograd seeded with dy, and compares every input's gradient with
        /// torch's (the residual's is dy itself).
        /// </summary>
        public void Check(string backendName, Func<GraphBuilder, Dictionary<string, Value>, Value> forward)
        {
            var feeds = Inputs.Append("dy").Select(input => _fixture.Feed($"{Name}.{input}", input)).ToArray();
            using var backend = TestBackends.Create(backendName);
            var g = new GraphBuilder();
            var values = feeds.ToDictionary(f => f.Name, f => g.Input(f.Name, f.DType, f.Shape));
            var y = forward(g, values);
            var gradients = Autograd.Gradients(g, y, values["dy"], Inputs.Select(input => values[input]));
            foreach (var input in Inputs) g.Output("d" + input, gradients[values[input]]);
            using var plan = g.Compile(backend);
            foreach (var f in feeds) SetInput(plan, f);
            plan.Run();
            foreach (var input in Inputs)
            {
                var expected = input == "residual" ? _fixture.F32($"{Name}.dy") : _fixture.F32($"{Name}.d{input}");
                float tolerance = input == "x" ? InputTolerance : WeightTolerance;
                Support.Check.Close(expected, plan.ReadOutput<float>("d" + input), tolerance, tolerance, $"{backendName}: {Name} d{input}");
            }
        }
    }
}

/// <summary>Convolution gradients by direct loops in double precision: dL/dx and dL/dweight for a given dL/dy.</summary>
internal static class DirectGradients
{
    /// <summary>NCHW conv2d with weight [Cout, Cin, kh, kw].</summary>
    public static (float[] Dx, float[] Dweight) Conv2d(float[] x, int[] xShape, float[] weight, int[] wShape, float[] dy, int stride, int padding)
    {
        int n = xShape[0], cin = xShape[1], h = xShape[2], w = xShape[3];
        int cout = wShape[0], kh = wShape[2], kw = wShape[3];
        int oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1;
        var dx = new double[x.Length];
        var dw = new double[weight.Length];
        // Parallel over input channels: each writes its own planes of dx and its own rows of dweight.
        Parallel.For(0, cin, i =>
        {
            for (int b = 0; b < n; b++)
                for (int o = 0; o < cout; o++)
                    for (int oy = 0; oy < oh; oy++)
                        for (int ox = 0; ox < ow; ox++)
                        {
                            double g = dy[((b * cout + o) * oh + oy) * ow + ox];
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++)
                                {
                                    int iy = oy * stride + ky - padding, ix = ox * stride + kx - padding;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    int xi = ((b * cin + i) * h + iy) * w + ix, wi = ((o * cin + i) * kh + ky) * kw + kx;
                                    dx[xi] += g * weight[wi];
                                    dw[wi] += g * x[xi];
                                }
                        }
        });
        return ([.. dx.Select(v => (float)v)], [.. dw.Select(v => (float)v)]);
    }

    /// <summary>NCL conv1d of leaky_relu(x, slope) with weight [Cout, Cin, K]; dx includes the leaky-ReLU's derivative.</summary>
    public static (float[] Dx, float[] Dweight) Conv1d(float[] x, int[] xShape, float[] weight, int[] wShape, float[] dy,
        int stride, int padding, int dilation, float slope)
    {
        int n = xShape[0], cin = xShape[1], length = xShape[2];
        int cout = wShape[0], k = wShape[2];
        int outLength = (length + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
        var dx = new double[x.Length];
        var dw = new double[weight.Length];
        Parallel.For(0, cin, i =>
        {
            for (int b = 0; b < n; b++)
                for (int o = 0; o < cout; o++)
                    for (int t = 0; t < outLength; t++)
                    {
                        double g = dy[(b * cout + o) * outLength + t];
                        for (int tap = 0; tap < k; tap++)
                        {
                            int s = t * stride + tap * dilation - padding;
                            if (s < 0 || s >= length) continue;
                            int xi = (b * cin + i) * length + s, wi = (o * cin + i) * k + tap;
                            float v = x[xi];
                            dx[xi] += g * weight[wi] * (v > 0 ? 1 : slope);
                            dw[wi] += g * (v > 0 ? v : v * slope);
                        }
                    }
        });
        return ([.. dx.Select(v => (float)v)], [.. dw.Select(v => (float)v)]);
    }
}
