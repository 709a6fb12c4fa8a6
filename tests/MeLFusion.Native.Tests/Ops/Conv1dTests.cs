using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class Conv1dTests
{
    // Exact im2col/GEMM: torch differs only in summation order over at most Cin·K = 99 products of O(1) terms.
    private const float Tolerance = 1e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("conv1d");
        foreach (var c in ConvCase.All(fixture))
        {
            int dilation = fixture.MetaInt($"{c.Name}.dilation");
            bool residualIsX = fixture.MetaBool($"{c.Name}.residual_is_x");
            var actual = OpRunner.Run(backend,
                (g, v) => g.Conv1d(v[0], v[1], c.Bias(v), c.Stride, c.Padding, dilation, c.Slope, residualIsX ? v[0] : c.Residual(v)),
                c.Feeds);
            Check.Close(c.Expected, actual, Tolerance, Tolerance, $"conv1d {c.Name}");
        }
    }

    /// <summary>The residual is an intermediate that dies at the conv: the planner gives its memory to the output.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Conv1dOp), MemberType = typeof(TestBackends))]
    public void ResidualInPlace(string backend)
    {
        using var fixture = Fixture.Open("conv1d");
        foreach (var name in new[] { "hifi_res", "k1" })
        {
            var c = ConvCase.All(fixture).Single(c => c.Name == name);
            int dilation = fixture.MetaInt($"{name}.dilation");
            int channels = c.Feeds[^1].Shape[1];
            var identity = new float[channels * channels];
            for (int i = 0; i < channels; i++) identity[i * channels + i] = 1f;
            var feeds = c.Feeds.Append(new OpRunner.Feed("identity", [channels, channels, 1], identity)).ToArray();

            using var cpu = TestBackends.Create(backend);
            var g = new GraphBuilder();
            var v = feeds.Select(f => g.Input(f.Name, f.DType, f.Shape)).ToArray();
            var copied = g.Conv1d(v[^2], v[^1]); // exact copy of the residual, dead after the next conv
            var y = g.Conv1d(v[0], v[1], c.Bias(v), c.Stride, c.Padding, dilation, c.Slope, copied);
            g.Output("out", g.Conv1d(y, v[^1])); // outputs are pinned; a copy of y lets y itself share memory
            using var plan = g.Compile(cpu);
            Assert.Equal(plan.Memory.ValueByteOffsets[copied.Id], plan.Memory.ValueByteOffsets[y.Id]);
            foreach (var f in feeds) plan.SetInput<float>(f.Name, f.Data);
            plan.Run();
            Check.Close(c.Expected, plan.ReadOutput<float>("out"), Tolerance, Tolerance, $"conv1d {name} in place");
        }
    }

    /// <summary>Long enough that im2col splits the output into chunks: 12 rows, so chunks of 2^21 / 12 = 174762 positions.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ChunkedMatchesDirectLoops(string backend)
    {
        int[] xShape = [1, 4, 200001], wShape = [5, 4, 3], yShape = [1, 5, 200001];
        var op = new Conv1dOp(1, 2, 2, 0.1f, hasBias: true, hasResidual: true);
        var plan = Conv1dPlan.Create(op.Geometry(new TensorShape(xShape), new TensorShape(wShape)), inputActivation: true);
        Assert.Equal(Conv1dAlgorithm.Im2Col, plan.Algorithm);
        Assert.True(plan.ChunkColumns < plan.Geometry.OutLength, "one chunk only");
        var x = NaiveConv.Random(4 * 200001, 1);
        var w = NaiveConv.Random(5 * 4 * 3, 2);
        var bias = NaiveConv.Random(5, 3);
        var residual = NaiveConv.Random(5 * 200001, 4);
        var expected = NaiveConv.Conv1d(x, xShape, w, wShape, bias, residual, stride: 1, padding: 2, dilation: 2, slope: 0.1f);
        var actual = OpRunner.Run(backend, (g, v) => g.Conv1d(v[0], v[1], v[2], 1, 2, 2, 0.1f, v[3]),
            new OpRunner.Feed("x", xShape, x), new OpRunner.Feed("w", wShape, w), new OpRunner.Feed("bias", [5], bias),
            new OpRunner.Feed("residual", yShape, residual));
        Check.Close(expected, actual, Tolerance, Tolerance, "conv1d in chunks");
    }

    [Fact]
    public void FixtureCoversEveryAlgorithm()
    {
        using var fixture = Fixture.Open("conv1d");
        var algorithms = ConvCase.All(fixture).Select(c =>
        {
            var op = new Conv1dOp(c.Stride, c.Padding, fixture.MetaInt($"{c.Name}.dilation"), c.Slope, c.HasBias, c.HasResidual);
            return Conv1dPlan.Create(op.Geometry(new TensorShape(c.X.Shape), new TensorShape(c.Weight.Shape)), c.Slope.HasValue).Algorithm;
        }).ToHashSet();
        Assert.Equal(Enum.GetValues<Conv1dAlgorithm>().Length, algorithms.Count);
    }

    [Fact]
    public void RejectsBadInputs()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 4, 20);
        var w = g.Input("w", DType.F32, 6, 5, 3);
        var error = Assert.Throws<ArgumentException>(() => g.Conv1d(x, w));
        Assert.Contains("conv1d", error.Message);
        Assert.Contains("[6, 5, 3]", error.Message);
        Assert.Contains("[1, 4, 20]", error.Message);

        var w4 = g.Input("w4", DType.F32, 6, 4, 3);
        var residual = g.Input("residual", DType.F32, 1, 6, 20);
        error = Assert.Throws<ArgumentException>(() => g.Conv1d(x, w4, residual: residual));
        Assert.Contains("residual must match the output [1, 6, 18], got [1, 6, 20]", error.Message);

        var w11 = g.Input("w11", DType.F32, 6, 4, 11);
        error = Assert.Throws<ArgumentException>(() => g.Conv1d(x, w11, dilation: 2));
        Assert.Contains("kernel 11 with dilation 2 is longer than input [1, 4, 20]", error.Message);

        error = Assert.Throws<ArgumentException>(() => g.Conv1d(x, w4, inputLeakySlope: -0.1f));
        Assert.Contains("conv1d: input leaky-ReLU slope must be in [0, 1]", error.Message);

        error = Assert.Throws<ArgumentException>(() => g.Conv1d(x, w4, dilation: 0));
        Assert.Contains("conv1d: dilation must be >= 1", error.Message);
    }
}
