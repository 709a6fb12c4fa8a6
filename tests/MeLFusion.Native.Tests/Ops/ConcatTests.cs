using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ConcatTests
{
    /// <summary>Concat only copies, so the output must equal torch.cat's bit for bit, in every dtype.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ConcatOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchExactly(string backend)
    {
        using var fixture = Fixture.Open("concat");
        foreach (var name in fixture.Cases)
        {
            var parts = Enumerable.Range(0, fixture.MetaInt(name + ".parts"))
                .Select(i => RawGraph.Load("concat", $"{name}.part{i}")).ToArray();
            int axis = fixture.MetaInt(name + ".axis");
            var actual = RawGraph.Run(backend, (g, v) => g.Concat(axis, v), parts);
            RawGraph.Equal(RawGraph.Load("concat", name + ".out"), actual, name);
        }
    }

    /// <summary>Parts big enough to be split over threads, including rows longer than one copy block.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ConcatOp), MemberType = typeof(TestBackends))]
    public void JoinsLargePartsOnEveryAxis(string backend)
    {
        var a = RawGraph.Iota(3, 70000, 2);
        var b = RawGraph.Iota(3, 70000, 3);
        foreach (int axis in new[] { 0, 2 })
        {
            var second = axis == 0 ? RawGraph.Iota(2, 70000, 2) : b;
            var actual = RawGraph.Run(backend, (g, v) => g.Concat(axis, v), a, second);
            RawGraph.Equal(ConcatReference(axis, a, second), actual, $"axis {axis}");
        }
        var wide = RawGraph.Iota(1, 150001);
        var joined = RawGraph.Run(backend, (g, v) => g.Concat(-1, v), wide, wide);
        RawGraph.Equal(ConcatReference(1, wide, wide), joined, "two 600 KB rows");
    }

    [Fact]
    public void RejectsMismatchedParts()
    {
        var g = new GraphBuilder();
        var a = g.Input("a", DType.F32, 2, 3);
        var error = Assert.Throws<ArgumentException>(() => g.Concat(1, a, g.Input("b", DType.F32, 3, 3)));
        Assert.Contains("concat", error.Message);
        Assert.Contains("F32[2, 3], F32[3, 3]", error.Message);
        error = Assert.Throws<ArgumentException>(() => g.Concat(0, a, g.Input("c", DType.F16, 2, 3)));
        Assert.Contains("F16[2, 3]", error.Message);
        error = Assert.Throws<ArgumentException>(() => g.Concat(2, a, a));
        Assert.Contains("axis 2", error.Message);
        error = Assert.Throws<ArgumentException>(() => g.Concat(0));
        Assert.Contains("concat", error.Message);
    }

    /// <summary>Row-major concat of two f32 tensors, element by element.</summary>
    private static RawTensor ConcatReference(int axis, RawTensor first, RawTensor second)
    {
        var a = Floats(first);
        var b = Floats(second);
        long outer = first.Shape.Take(axis).Aggregate(1L, (p, d) => p * d);
        int rowA = a.Length / (int)outer, rowB = b.Length / (int)outer;
        var result = new float[a.Length + b.Length];
        for (int o = 0; o < outer; o++)
        {
            Array.Copy(a, o * rowA, result, o * (rowA + rowB), rowA);
            Array.Copy(b, o * rowB, result, o * (rowA + rowB) + rowA, rowB);
        }
        var shape = (int[])first.Shape.Clone();
        shape[axis] += second.Shape[axis];
        return RawGraph.F32(shape, result);
    }

    private static float[] Floats(RawTensor t) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.Bytes).ToArray();
}
