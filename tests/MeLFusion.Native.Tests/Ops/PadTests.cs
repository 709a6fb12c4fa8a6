using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class PadTests
{
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(Pad2dOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchPad(string backend)
    {
        using var f = Fixture.Open("pad");
        foreach (string c in f.Cases)
        {
            var p = f.Meta($"{c}.pad").Split(',').Select(int.Parse).ToArray();
            var y = OpRunner.Run(backend, (g, i) => g.Pad2d(i[0], p[0], p[1], p[2], p[3]), new OpRunner.Feed("x", f.Shape($"{c}.x"), f.F32($"{c}.x")));
            Check.Close(f.F32($"{c}.y"), y, 0, 0, c); // pure data movement: exact
        }
    }

    [Fact]
    public void NegativePaddingIsRejected() =>
        Assert.Contains("pad2d", Assert.Throws<ArgumentOutOfRangeException>(() => new Pad2dOp(0, -1, 0, 0)).Message);
}
