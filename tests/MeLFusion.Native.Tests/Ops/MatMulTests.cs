using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class MatMulTests
{
    // Inputs are standard normal and K ≤ 600, so results are O(√K) ≲ 25. Expected values are exact (float64 in torch);
    // f32 accumulation rounds partial sums of size ~√p at each of K steps, a random walk of about 2⁻²⁴·K/√2 ≈ 3e-5
    // for K = 600. 1e-4 absolute plus 1e-4 relative leaves ample margin, while a wrong index, transpose or broadcast
    // moves results by O(1).
    private const float Atol = 1e-4f, Rtol = 1e-4f;

    public static TheoryData<string, string> MatMulCases => Cases("matmul", TestBackends.Supporting<MatMulOp>());
    public static TheoryData<string, string> LinearCases => Cases("linear", TestBackends.Supporting<LinearOp>());

    [Theory]
    [MemberData(nameof(MatMulCases))]
    public void MatMulMatchesTorch(string backendName, string name)
    {
        using var fixture = Fixture.Open("matmul");
        var a = Feed(fixture, name, "a");
        var b = Feed(fixture, name, "b");
        bool transposeA = fixture.MetaBool(name + ".transpose_a");
        bool transposeB = fixture.MetaBool(name + ".transpose_b");
        // View cases permute the stored inputs inside the graph; the matmul then reads them strided.
        string permuteA = fixture.Meta(name + ".permute_a"), permuteB = fixture.Meta(name + ".permute_b");
        float[] actual = OpRunner.Run(backendName, (g, x) =>
            g.MatMul(Permuted(g, x[0], permuteA), Permuted(g, x[1], permuteB), transposeA, transposeB), a, b);
        Check.Close(fixture.F32(name + ".out"), actual, Atol, Rtol, $"matmul {name}");
    }

    [Theory]
    [MemberData(nameof(LinearCases))]
    public void LinearMatchesTorch(string backendName, string name)
    {
        using var fixture = Fixture.Open("linear");
        var feeds = new List<OpRunner.Feed> { Feed(fixture, name, "x"), Feed(fixture, name, "weight") };
        bool hasBias = fixture.MetaBool(name + ".bias");
        if (hasBias) feeds.Add(Feed(fixture, name, "bias"));
        float[] actual = OpRunner.Run(backendName, (g, x) => g.Linear(x[0], x[1], hasBias ? x[2] : null), [.. feeds]);
        Check.Close(fixture.F32(name + ".out"), actual, Atol, Rtol, $"linear {name}");
    }

    [Fact]
    public void PermutedOperandsAreReadInPlaceWithoutACopy()
    {
        var g = new GraphBuilder();
        var q = g.Input("q", DType.F32, 2, 7, 3, 16);
        var k = g.Input("k", DType.F32, 2, 5, 3, 16);
        var scores = g.MatMul(g.Permute(q, 0, 2, 1, 3), g.Permute(k, 0, 2, 3, 1));
        Assert.Equal([2, 3, 7, 5], scores.Shape.Dims.ToArray());
        Assert.Single(g.Nodes);
        Assert.IsType<MatMulOp>(g.Nodes[0].Op);
    }

    [Fact]
    public void RejectsBadInputsWithTheShapesInTheMessage()
    {
        AssertRejected("matmul:", "[7, 13]", g => g.MatMul(g.Input("a", DType.F32, 7, 13), g.Input("b", DType.F32, 12, 5)));
        AssertRejected("matmul:", "[5, 13]", g => g.MatMul(g.Input("a", DType.F32, 7, 13), g.Input("b", DType.F32, 5, 13), transposeB: false));
        AssertRejected("matmul:", "[3, 7, 13]", g => g.MatMul(g.Input("a", DType.F32, 3, 7, 13), g.Input("b", DType.F32, 2, 13, 5)));
        AssertRejected("matmul:", "[13]", g => g.MatMul(g.Input("a", DType.F32, 13), g.Input("b", DType.F32, 13, 5)));
        AssertRejected("matmul:", "F32", g => g.MatMul(g.Input("a", DType.F16, 7, 13), g.Input("b", DType.F32, 13, 5)));
        AssertRejected("linear:", "[5, 12]", g => g.Linear(g.Input("x", DType.F32, 3, 13), g.Input("w", DType.F32, 5, 12)));
        AssertRejected("linear:", "[4]", g => g.Linear(g.Input("x", DType.F32, 3, 13), g.Input("w", DType.F32, 5, 13), g.Input("b", DType.F32, 4)));
        AssertRejected("linear:", "F32", g => g.Linear(g.Input("x", DType.BF16, 3, 13), g.Input("w", DType.F32, 5, 13)));
    }

    private static void AssertRejected(string prefix, string expectedInMessage, Func<GraphBuilder, Value> build)
    {
        var error = Assert.Throws<ArgumentException>(() => build(new GraphBuilder()));
        Assert.StartsWith(prefix, error.Message);
        Assert.Contains(expectedInMessage, error.Message);
    }

    private static TheoryData<string, string> Cases(string fixtureName, TheoryData<string> backends)
    {
        using var fixture = Fixture.Open(fixtureName);
        var data = new TheoryData<string, string>();
        foreach (string backend in backends)
            foreach (string name in fixture.Cases)
                data.Add(backend, name);
        return data;
    }

    private static OpRunner.Feed Feed(Fixture fixture, string name, string tensor) =>
        new(tensor, fixture.Shape($"{name}.{tensor}"), fixture.F32($"{name}.{tensor}"));

    private static Value Permuted(GraphBuilder g, Value x, string permutation) =>
        permutation.Length == 0 ? x : g.Permute(x, permutation.Split(',').Select(int.Parse).ToArray());
}
