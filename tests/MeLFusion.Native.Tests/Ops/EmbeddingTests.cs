using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class EmbeddingTests
{
    /// <summary>A lookup copies table rows, so the output must equal F.embedding's bit for bit.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchExactly(string backend)
    {
        using var fixture = Fixture.Open("embedding");
        foreach (var name in fixture.Cases)
        {
            var ids = RawGraph.Load("embedding", name + ".ids");
            var table = RawGraph.Load("embedding", name + ".table");
            var actual = RawGraph.Run(backend, (g, v) => g.Embedding(v[0], v[1]), ids, table);
            RawGraph.Equal(RawGraph.Load("embedding", name + ".out"), actual, name);
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingOp), MemberType = typeof(TestBackends))]
    public void LooksUpRowsOfAConstantTableOnManyThreads(string backend)
    {
        const int vocabulary = 1000, dim = 768, count = 300;
        using var device = TestBackends.Create(backend);
        using var memory = device.Allocate((long)vocabulary * dim * sizeof(float), "embedding table");
        var rows = new float[vocabulary * dim];
        for (int i = 0; i < rows.Length; i++) rows[i] = i;
        device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.AsSpan()), memory.Pointer);
        var ids = Enumerable.Range(0, count).Select(i => (float)(i * 7919 % vocabulary)).ToArray();

        var actual = OpRunner.Run(device, (g, v) => g.Embedding(v[0], g.Constant("table", memory.View(DType.F32, new TensorShape(vocabulary, dim)))),
            new OpRunner.Feed("ids", [count], ids, DType.I64));

        var expected = ids.SelectMany(id => rows.Skip((int)id * dim).Take(dim)).ToArray();
        Check.Close(expected, actual, 0, 0, "gathered rows");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmbeddingOp), MemberType = typeof(TestBackends))]
    public void OutOfRangeIdsFailWithTheIdAndTheTableSize(string backend)
    {
        var table = new OpRunner.Feed("table", [11, 4], new float[44]);
        foreach (var (dtype, bad) in new[] { (DType.I32, 11f), (DType.I64, -1f), (DType.I64, 5e9f) })
        {
            var ids = new OpRunner.Feed("ids", [2, 2], [0, 3, bad, 10], dtype);
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => OpRunner.Run(backend, (g, v) => g.Embedding(v[0], v[1]), ids, table));
            Assert.Contains("embedding", error.Message);
            Assert.Contains($"id {(long)bad} ", error.Message);
            Assert.Contains("V = 11", error.Message);
        }
    }

    [Fact]
    public void RejectsFloatIdsAndNonMatrixTables()
    {
        var g = new GraphBuilder();
        var error = Assert.Throws<ArgumentException>(() => g.Embedding(g.Input("f", DType.F32, 3), g.Input("t", DType.F32, 5, 2)));
        Assert.Contains("embedding", error.Message);
        Assert.Contains("F32[3]", error.Message);
        error = Assert.Throws<ArgumentException>(() => g.Embedding(g.Input("i", DType.I32, 3), g.Input("t3", DType.F32, 5, 2, 2)));
        Assert.Contains("F32[5, 2, 2]", error.Message);
    }
}
