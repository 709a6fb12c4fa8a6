using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class TimestepEmbeddingTests
{
    // Arguments t·frequency reach 1000 rad, where one f32 ulp is 6.1e-5. torch's vectorised exp may round a frequency
    // one ulp away from ours, moving the argument (and so sin/cos) by up to ~1e-4; sin/cos themselves agree to ~1e-7.
    private const float Atol = 2e-4f, Rtol = 0;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(TimestepEmbeddingOp), MemberType = typeof(TestBackends))]
    public void MatchesDiffusersFormulaInTorch(string backend)
    {
        using var fixture = Fixture.Open("timestep_embedding");
        foreach (var name in fixture.Cases)
        {
            var feed = new OpRunner.Feed("t", fixture.Shape(name + ".t"), fixture.F32(name + ".t"));
            var actual = OpRunner.Run(backend, (g, v) => g.TimestepEmbedding(v[0], fixture.MetaInt(name + ".dim"),
                fixture.MetaBool(name + ".flip"), fixture.MetaFloat(name + ".shift"), fixture.MetaFloat(name + ".scale"),
                fixture.MetaInt(name + ".max_period")), feed);
            Check.Close(fixture.F32(name + ".out"), actual, Atol, Rtol, name);
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(TimestepEmbeddingOp), MemberType = typeof(TestBackends))]
    public void IntegerTimestepsEmbedLikeTheirFloatValues(string backend)
    {
        float[] steps = [0, 1, 981, 500];
        Value Embed(GraphBuilder g, Value[] v) => g.TimestepEmbedding(v[0], 320, flipSinToCos: true, downscaleFreqShift: 0);
        var expected = OpRunner.Run(backend, Embed, new OpRunner.Feed("t", [4], steps));
        foreach (var dtype in new[] { DType.I32, DType.I64 })
            Check.Close(expected, OpRunner.Run(backend, Embed, new OpRunner.Feed("t", [4], steps, dtype)), 0, 0, dtype.ToString());
    }

    [Fact]
    public void RejectsBadTimestepsAndParameters()
    {
        var g = new GraphBuilder();
        var error = Assert.Throws<ArgumentException>(() => g.TimestepEmbedding(g.Input("t2", DType.F32, 2, 1), 320, true, 0));
        Assert.Contains("timestep_embedding", error.Message);
        Assert.Contains("F32[2, 1]", error.Message);
        error = Assert.Throws<ArgumentException>(() => g.TimestepEmbedding(g.Input("h", DType.F16, 2), 320, true, 0));
        Assert.Contains("F16[2]", error.Message);
        var t = g.Input("t", DType.F32, 2);
        error = Assert.Throws<ArgumentException>(() => g.TimestepEmbedding(t, 0, true, 0));
        Assert.Contains("embedding dim", error.Message);
        error = Assert.Throws<ArgumentException>(() => g.TimestepEmbedding(t, 2, true, 1));
        Assert.Contains("divides by zero", error.Message);
    }
}
