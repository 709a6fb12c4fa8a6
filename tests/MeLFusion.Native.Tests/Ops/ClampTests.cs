using MeLFusion.Native.Ops;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ClampTests
{
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ScalarOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchClampIncludingNaNAndInfinities(string backend)
    {
        using var f = Fixture.Open("clamp");
        foreach (string c in f.Cases)
        {
            var y = OpRunner.Run(backend, (g, i) => g.Clamp(i[0], f.MetaFloat($"{c}.min"), f.MetaFloat($"{c}.max")),
                new OpRunner.Feed("x", f.Shape($"{c}.x"), f.F32($"{c}.x")));
            var expected = f.F32($"{c}.y");
            Assert.Equal(expected.Select(float.IsNaN), y.Select(float.IsNaN));
            Check.Close(expected.Select(v => float.IsNaN(v) ? 0 : v).ToArray(), y.Select(v => float.IsNaN(v) ? 0 : v).ToArray(), 0, 0, c);
        }
    }
}
