using MeLFusion.Native.Models;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Models;

public class HostConstantsTests
{
    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void UploadsOncePerNameAndFeedsGraphs(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        using var constants = new HostConstants();
        int computed = 0;
        float[] Table() { computed++; return [1f, 2f, 3f, 4f, 5f, 6f]; }
        var g = new GraphBuilder();
        var first = constants.Get(g, backend, "table", [2, 3], Table);
        var second = constants.Get(g, backend, "table", [2, 3], Table);
        Assert.Equal(1, computed);
        Assert.Equal(first.Constant!.Value.Data, second.Constant!.Value.Data);
        Assert.Equal(DType.F32, first.DType);

        var ids = constants.Get(g, backend, "ids", [2], () => new[] { 1, 0 });
        Assert.Equal(DType.I32, ids.DType);
        var rows = OpRunner.Run(backend, (graph, _) => graph.Embedding(
            constants.Get(graph, backend, "ids", [2], () => new[] { 1, 0 }),
            constants.Get(graph, backend, "table", [2, 3], Table)));
        Assert.Equal([4f, 5f, 6f, 1f, 2f, 3f], rows);
    }

    [Fact]
    public void RejectsWrongCountsShapesAndTypes()
    {
        using var backend = TestBackends.Create("cpu");
        using var constants = new HostConstants();
        var g = new GraphBuilder();
        Assert.Contains("'bad'", Assert.Throws<ArgumentException>(() => constants.Get(g, backend, "bad", [2, 2], () => new[] { 1f })).Message);
        constants.Get(g, backend, "t", [3], () => new[] { 1, 2, 3 });
        Assert.Contains("[3]", Assert.Throws<ArgumentException>(() => constants.Get(g, backend, "t", [1, 3], () => new[] { 1, 2, 3 })).Message);
        Assert.Contains("Double", Assert.Throws<ArgumentException>(() => constants.Get(g, backend, "d", [1], () => new[] { 1.0 })).Message);
    }
}
