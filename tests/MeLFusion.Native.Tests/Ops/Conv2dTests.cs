using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class Conv2dTests
{
    // Exact paths (GEMM, im2col) differ from torch only in summation order over at most Cin·kh·kw = 243 products
    // of O(1) terms: measured <= 2.4e-6. Winograd F(4x4, 3x3) adds transform rounding (coefficients up to 8 in Aᵀ,
    // 2.5 in Bᵀ): measured <= 7e-6 on these O(1) outputs (2.4e-5 against float64 at 320 channels), so it gets 5e-5.
    // A wrong tap, tile or border shows up as errors of O(0.1).
    private const float ExactTolerance = 2e-5f;
    private const float WinogradTolerance = 5e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv2dOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("conv2d");
        foreach (var c in ConvCase.All(fixture))
        {
            var actual = OpRunner.Run(backend, (g, v) => g.Conv2d(v[0], v[1], c.Bias(v), c.Stride, c.Padding, c.Residual(v)), c.Feeds);
            float tolerance = IsWinograd(c) ? WinogradTolerance : ExactTolerance;
            Check.Close(c.Expected, actual, tolerance, tolerance, $"conv2d {c.Name}");
        }
    }

    /// <summary>Inputs large enough that im2col and Winograd split their work into chunks (partial rows, partial tile groups).</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ChunkedPathsMatchDirectLoops(string backend)
    {
        // im2col: 72 rows, so chunks of 2^21 / 72 = 29127 pixels, not a multiple of the 180-pixel output rows.
        Compare(backend, [1, 8, 341, 359], [3, 8, 3, 3], stride: 2, padding: 1, Conv2dAlgorithm.Im2Col, ExactTolerance);
        // Winograd: chunks of 6·2^20 / (36 · 19) -> 9184 tiles, 4692 per image: the first chunk ends inside the second
        // image, the second holds 200 tiles (ending in a partial group of 16).
        Compare(backend, [2, 16, 271, 275], [3, 16, 3, 3], stride: 1, padding: 1, Conv2dAlgorithm.Winograd, WinogradTolerance);

        static void Compare(string backend, int[] xShape, int[] wShape, int stride, int padding, Conv2dAlgorithm algorithm, float tolerance)
        {
            var op = new Conv2dOp(stride, padding, hasBias: true, hasResidual: false);
            var plan = Conv2dPlan.Create(op.Geometry(new TensorShape(xShape), new TensorShape(wShape)));
            Assert.Equal(algorithm, plan.Algorithm);
            Assert.True(plan.ChunkColumns < (algorithm == Conv2dAlgorithm.Winograd
                ? new WinogradLayout(plan.Geometry).Tiles : plan.Geometry.OutHeight * plan.Geometry.OutWidth), "one chunk only");

            var x = NaiveConv.Random(xShape.Aggregate(1, (a, b) => a * b), 1);
            var w = NaiveConv.Random(wShape.Aggregate(1, (a, b) => a * b), 2).Select(v => v / 10).ToArray();
            var bias = NaiveConv.Random(wShape[0], 3);
            var expected = NaiveConv.Conv2d(x, xShape, w, wShape, bias, stride, padding);
            var actual = OpRunner.Run(backend, (g, v) => g.Conv2d(v[0], v[1], v[2], stride, padding),
                new OpRunner.Feed("x", xShape, x), new OpRunner.Feed("w", wShape, w), new OpRunner.Feed("bias", [wShape[0]], bias));
            Check.Close(expected, actual, tolerance, tolerance, $"conv2d {algorithm} in chunks");
        }
    }

    [Fact]
    public void FixtureCoversEveryAlgorithm()
    {
        using var fixture = Fixture.Open("conv2d");
        var algorithms = ConvCase.All(fixture).Select(c => Plan(c).Algorithm).ToHashSet();
        Assert.Equal(Enum.GetValues<Conv2dAlgorithm>().Length, algorithms.Count);
    }

    /// <summary>The residual is an intermediate that dies at the conv: the planner gives its memory to the output.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv2dOp), MemberType = typeof(TestBackends))]
    public void ResidualInPlace(string backend)
    {
        using var fixture = Fixture.Open("conv2d");
        foreach (var name in new[] { "wino_bias_res", "k3_s2_wide", "k1" })
        {
            var c = ConvCase.All(fixture).Single(c => c.Name == name);
            var residual = c.Feeds[^1];
            int channels = residual.Shape[1];
            var identity = new float[channels * channels];
            for (int i = 0; i < channels; i++) identity[i * channels + i] = 1f;
            var feeds = c.Feeds.Append(new OpRunner.Feed("identity", [channels, channels, 1, 1], identity)).ToArray();

            using var cpu = TestBackends.Create(backend);
            var g = new GraphBuilder();
            var v = feeds.Select(f => g.Input(f.Name, f.DType, f.Shape)).ToArray();
            var copied = g.Conv2d(v[^2], v[^1]); // exact copy of the residual, dead after the next conv
            var y = g.Conv2d(v[0], v[1], c.Bias(v), c.Stride, c.Padding, copied);
            g.Output("out", g.Conv2d(y, v[^1])); // outputs are pinned; a copy of y lets y itself share memory
            using var plan = g.Compile(cpu);
            Assert.Equal(plan.Memory.ValueByteOffsets[copied.Id], plan.Memory.ValueByteOffsets[y.Id]);
            foreach (var f in feeds) plan.SetInput<float>(f.Name, f.Data);
            plan.Run();
            float tolerance = IsWinograd(c) ? WinogradTolerance : ExactTolerance;
            Check.Close(c.Expected, plan.ReadOutput<float>("out"), tolerance, tolerance, $"conv2d {name} in place");
        }
    }

    [Fact]
    public void RejectsBadInputs()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 4, 8, 8);
        var w = g.Input("w", DType.F32, 6, 5, 3, 3);
        var error = Assert.Throws<ArgumentException>(() => g.Conv2d(x, w));
        Assert.Contains("conv2d", error.Message);
        Assert.Contains("[6, 5, 3, 3]", error.Message);
        Assert.Contains("[1, 4, 8, 8]", error.Message);

        var w4 = g.Input("w4", DType.F32, 6, 4, 3, 3);
        var bias = g.Input("bias", DType.F32, 5);
        error = Assert.Throws<ArgumentException>(() => g.Conv2d(x, w4, bias));
        Assert.Contains("bias must be [6], got [5]", error.Message);

        var residual = g.Input("residual", DType.F32, 1, 6, 8, 8);
        error = Assert.Throws<ArgumentException>(() => g.Conv2d(x, w4, padding: 0, residual: residual));
        Assert.Contains("residual must match the output [1, 6, 6, 6], got [1, 6, 8, 8]", error.Message);

        var big = g.Input("big", DType.F32, 6, 4, 11, 11);
        error = Assert.Throws<ArgumentException>(() => g.Conv2d(x, big, padding: 1));
        Assert.Contains("larger than input", error.Message);

        var half = g.Input("half", DType.F16, 1, 4, 8, 8);
        error = Assert.Throws<ArgumentException>(() => g.Conv2d(half, w4));
        Assert.Contains("only f32", error.Message);

        error = Assert.Throws<ArgumentException>(() => g.Conv2d(x, w4, stride: 0));
        Assert.Contains("conv2d: stride must be >= 1", error.Message);
    }

    private static Conv2dPlan Plan(ConvCase c)
    {
        var op = new Conv2dOp(c.Stride, c.Padding, c.HasBias, c.HasResidual);
        return Conv2dPlan.Create(op.Geometry(new TensorShape(c.X.Shape), new TensorShape(c.Weight.Shape)));
    }

    private static bool IsWinograd(ConvCase c) => Plan(c).Algorithm == Conv2dAlgorithm.Winograd;
}
