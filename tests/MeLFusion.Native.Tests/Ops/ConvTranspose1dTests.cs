using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ConvTranspose1dTests
{
    // Exact polyphase GEMMs: torch differs only in summation order over at most Cin·ceil(K/stride) = 24 products.
    private const float Tolerance = 1e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ConvTranspose1dOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("conv_transpose1d");
        foreach (var c in ConvCase.All(fixture))
        {
            int outputPadding = fixture.MetaInt($"{c.Name}.output_padding");
            var actual = OpRunner.Run(backend,
                (g, v) => g.ConvTranspose1d(v[0], v[1], c.Bias(v), c.Stride, c.Padding, outputPadding, c.Slope), c.Feeds);
            Check.Close(c.Expected, actual, Tolerance, Tolerance, $"conv_transpose1d {c.Name}");
        }
    }

    /// <summary>Long enough that the polyphase GEMMs run in chunks: 2^22 / (4 phases · 2 + 3) = 381300 slots each.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ChunkedMatchesDirectLoops(string backend)
    {
        int[] xShape = [1, 3, 400000], wShape = [3, 2, 8];
        var op = new ConvTranspose1dOp(4, 2, 1, 0.2f, hasBias: true);
        var plan = ConvTranspose1dPlan.Create(op.Geometry(new TensorShape(xShape), new TensorShape(wShape)));
        Assert.True(plan.ChunkSlots < plan.Slots, "one chunk only");
        var x = NaiveConv.Random(3 * 400000, 1);
        var w = NaiveConv.Random(3 * 2 * 8, 2);
        var bias = NaiveConv.Random(2, 3);
        var expected = NaiveConv.ConvTranspose1d(x, xShape, w, wShape, bias, stride: 4, padding: 2, outputPadding: 1, slope: 0.2f);
        var actual = OpRunner.Run(backend, (g, v) => g.ConvTranspose1d(v[0], v[1], v[2], 4, 2, 1, 0.2f),
            new OpRunner.Feed("x", xShape, x), new OpRunner.Feed("w", wShape, w), new OpRunner.Feed("bias", [2], bias));
        Check.Close(expected, actual, Tolerance, Tolerance, "conv_transpose1d in chunks");
    }

    [Fact]
    public void RejectsBadInputs()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 4, 10);
        var w = g.Input("w", DType.F32, 5, 3, 16);
        var error = Assert.Throws<ArgumentException>(() => g.ConvTranspose1d(x, w, stride: 8));
        Assert.Contains("conv_transpose1d", error.Message);
        Assert.Contains("[5, 3, 16]", error.Message);
        Assert.Contains("[1, 4, 10]", error.Message);

        var w4 = g.Input("w4", DType.F32, 4, 3, 16);
        var bias = g.Input("bias", DType.F32, 4);
        error = Assert.Throws<ArgumentException>(() => g.ConvTranspose1d(x, w4, bias, stride: 8));
        Assert.Contains("bias must be [3], got [4]", error.Message);

        error = Assert.Throws<ArgumentException>(() => g.ConvTranspose1d(x, w4, stride: 2, outputPadding: 2));
        Assert.Contains("output padding must be in [0, stride 2)", error.Message);

        var w2 = g.Input("w2", DType.F32, 4, 3, 2);
        var one = g.Input("one", DType.F32, 1, 4, 1);
        error = Assert.Throws<ArgumentException>(() => g.ConvTranspose1d(one, w2, padding: 1));
        Assert.Contains("leaves no output", error.Message);
    }
}
