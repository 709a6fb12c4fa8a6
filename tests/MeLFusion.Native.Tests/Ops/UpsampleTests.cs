using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class UpsampleTests
{
    /// <summary>Nearest upsampling only copies values, so the output must equal torch's bit for bit in every dtype.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(UpsampleNearest2xOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchExactly(string backend)
    {
        using var fixture = Fixture.Open("upsample");
        foreach (var name in fixture.Cases)
        {
            var x = RawGraph.Load("upsample", name + ".x");
            var actual = RawGraph.Run(backend, (g, v) => g.UpsampleNearest2x(v[0]), x);
            RawGraph.Equal(RawGraph.Load("upsample", name + ".out"), actual, name);
        }
    }

    [Fact]
    public void RejectsInputsThatAreNotNchwOrHaveEightByteElements()
    {
        var g = new GraphBuilder();
        var rank3 = g.Input("a", DType.F32, 2, 3, 4);
        var error = Assert.Throws<ArgumentException>(() => g.UpsampleNearest2x(rank3));
        Assert.Contains("upsample_nearest2x", error.Message);
        Assert.Contains("[2, 3, 4]", error.Message);

        var wide = g.Input("b", DType.I64, 1, 1, 2, 2);
        error = Assert.Throws<ArgumentException>(() => g.UpsampleNearest2x(wide));
        Assert.Contains("I64[1, 1, 2, 2]", error.Message);
    }
}
