using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class Conv2dTests
{
    // Exact paths (GEMM, im2col) differ from torch only in summation order over at most Cin·kh·kw = 243 products
    // of O(1) terms: ~1e-6. Winograd F(4x4, 3x3) adds transform rounding with coefficients up to 8 (Aᵀ) and 5 (Bᵀ):
    // measured ~1e-5 on these O(1) outputs, so it gets 1e-4; a wrong tap or tile shows up as O(0.1) errors.
    private const float ExactTolerance = 2e-5f;
    private const float WinogradTolerance = 1e-4f;

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
