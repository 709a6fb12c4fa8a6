using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class EmbeddingGradientTests
{
    /// <summary>Rows sum at most four unit-scale dy rows: f32 rounding only, against torch in float64.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingGradientOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("embedding_grad");
        foreach (string c in f.Cases)
        {
            var ids = IdFeed(f, c);
            var dtable = GradientFixtureRunner.Gradients(backend, (g, i) => g.Embedding(i[0], i[1]),
                [ids, f.Feed($"{c}.table", "table")], f.Feed($"{c}.dy", "dy"), "table")[0];
            Check.Close(f.F32($"{c}.dtable"), dtable, 1e-6f, 1e-6f, $"{backend}: embedding {c} dtable");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingGradientOp), MemberType = typeof(TestBackends))]
    public void GradCheck(string backend)
    {
        var random = new Random(35);
        var ids = new Feed("ids", [2, 4], [1, 4, 1, 0, 4, 4, 2, 1], DType.I32);
        Support.GradCheck.Run(backend, (g, i) => g.Mul(g.Embedding(i[0], i[1]), g.Embedding(i[0], i[1])),
            [ids, Feed.Uniform(random, 1f, "table", 6, 3)]);
    }

    /// <summary>I64 ids, a table row read by no id (its gradient stays zero).</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingGradientOp), MemberType = typeof(TestBackends))]
    public void GradCheckWithI64Ids(string backend)
    {
        var random = new Random(38);
        var ids = new Feed("ids", [5], [3, 0, 3, 2, 0], DType.I64);
        Support.GradCheck.Run(backend, (g, i) => g.Mul(g.Embedding(i[0], i[1]), i[2]),
            [ids, Feed.Uniform(random, 1f, "table", 5, 4), Feed.Uniform(random, 1f, "scale", 5, 4)], differentiate: ["table"]);
    }

    /// <summary>
    /// Sums of many occurrences, so the order of additions shows in the bits: both backends add in position order.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingGradientOp), MemberType = typeof(TestBackends))]
    public void SumsOccurrencesInPositionOrder(string backend)
    {
        const int vocabulary = 7, width = 5, count = 60;
        var random = new Random(36);
        var ids = Enumerable.Range(0, count).Select(_ => (float)random.Next(vocabulary - 1)).ToArray(); // the last row unused
        var dy = Feed.Uniform(random, 1000f, "dy", count, width);
        var actual = Run(backend, (g, i) => g.Apply(new EmbeddingGradientOp(vocabulary), i[0], i[1]),
            new Feed("ids", [count], ids, DType.I64), dy);
        var expected = new float[vocabulary * width];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < width; j++)
                expected[(int)ids[i] * width + j] += dy.Data[i * width + j];
        Check.Close(expected, actual, 0f, 0f, $"{backend}: embedding_backward in position order");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingGradientOp), MemberType = typeof(TestBackends))]
    public void OutOfRangeIdsFailWithTheIdAndTheTableSize(string backend)
    {
        var ids = new Feed("ids", [3], [0, 8, 2], DType.I32);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Run(backend,
            (g, i) => g.Apply(new EmbeddingGradientOp(8), i[0], i[1]), ids, new Feed("dy", [3, 2], new float[6])));
        Assert.Contains("embedding_backward: id 8 at position 1", error.Message);
        Assert.Contains("V = 8", error.Message);
    }

    [Fact]
    public void RejectsBadInputs()
    {
        AssertRejected("embedding_backward: ids must be i32 or i64, got F32[3]", g =>
            g.Apply(new EmbeddingGradientOp(5), g.Input("ids", DType.F32, 3), g.Input("dy", DType.F32, 3, 2)));
        AssertRejected("embedding_backward: dy must be f32, got F16[3, 2]", g =>
            g.Apply(new EmbeddingGradientOp(5), g.Input("ids", DType.I32, 3), g.Input("dy", DType.F16, 3, 2)));
        AssertRejected("embedding_backward: dy must be [ids dims.., D], got ids I64[2, 3] and dy F32[3, 2]", g =>
            g.Apply(new EmbeddingGradientOp(5), g.Input("ids", DType.I64, 2, 3), g.Input("dy", DType.F32, 3, 2)));
    }

    private static void AssertRejected(string message, Action<GraphBuilder> build) =>
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => build(new GraphBuilder())).Message);

    private static Feed IdFeed(Fixture f, string c)
    {
        bool narrow = f.Meta($"{c}.ids_dtype") == "i32";
        float[] ids = narrow ? [.. f.I32($"{c}.ids").Select(i => (float)i)] : [.. f.I64($"{c}.ids").Select(i => (float)i)];
        return new Feed("ids", f.Shape($"{c}.ids"), ids, narrow ? DType.I32 : DType.I64);
    }
}
