using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The kernels with block-wide reductions or shared-memory tiles, run by the emulator with threads in index order, in
/// reverse and in random order and with blocks on 1 to 3 OS threads: a missing barrier would read unwritten (NaN)
/// shared memory or a neighbour's stale value, and any order-dependent sum would change bits. Results must be
/// identical to the bit. Shapes cross the kernels' block and tile edges.
/// </summary>
public class KernelDeterminismTests
{
    public static TheoryData<string> Cases => new() { "softmax", "layer_norm", "rms_norm", "matmul", "linear_bias", "transposed_matmul" };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BitwiseIdenticalUnderEverySchedule(string name)
    {
        var (build, feeds) = Case(name);
        var inOrder = EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.InOrder, 17, 1);
        Assert.DoesNotContain(inOrder, float.IsNaN);
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Reverse, 17, 2));
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Random, 17, 3));
        // And the same values as the CPU backend, within the op tests' tolerances.
        Check.Close(OpRunner.Run("cpu", build, feeds), inOrder, 1e-5f, 1e-5f, name);
    }

    /// <summary>With two bad ids, every schedule reports the first position (the block reduction takes the minimum).</summary>
    [Theory]
    [InlineData(EmulatorSchedule.InOrder)]
    [InlineData(EmulatorSchedule.Reverse)]
    [InlineData(EmulatorSchedule.Random)]
    public void EmbeddingReportsTheFirstBadIdUnderEverySchedule(EmulatorSchedule schedule)
    {
        using var device = new EmulatedDevice(schedule, seed: 9);
        var ids = Enumerable.Range(0, 600).Select(i => (float)(i % 11)).ToArray();
        ids[500] = 40; // thread 500 % 256 = 244 of the checking block...
        ids[37] = -3;  // ...runs after thread 37 in reverse order; only the reduction picks 37
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => OpRunner.Run(device.Backend, (g, v) => g.Embedding(v[0], v[1]),
            new OpRunner.Feed("ids", [600], ids, DType.I64), new OpRunner.Feed("table", [11, 3], new float[33])));
        Assert.Contains("id -3 at position 37 of ids [600]", error.Message);
    }

    /// <summary>When two lookups of one plan fail, the earlier one (in launch order) is reported, and the backend recovers.</summary>
    [Fact]
    public void EmbeddingReportsTheEarliestFailingLookupThenRecovers()
    {
        using var device = new EmulatedDevice();
        var table = new OpRunner.Feed("table", [5, 2], Enumerable.Range(0, 10).Select(i => (float)i).ToArray());
        var first = new OpRunner.Feed("first", [3], [0, 9, 1], DType.I32);
        var second = new OpRunner.Feed("second", [2, 2], [7, 0, 0, 0], DType.I32);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => OpRunner.Run(device.Backend,
            (g, v) => g.Concat(0, g.Embedding(v[0], v[2]), g.Reshape(g.Embedding(v[1], v[2]), 4, 2)), first, second, table));
        Assert.Contains("id 9 at position 1 of ids [3]", error.Message);

        var good = OpRunner.Run(device.Backend, (g, v) => g.Embedding(v[0], v[1]),
            new OpRunner.Feed("ids", [2], [4, 1], DType.I32), table);
        Assert.Equal([8f, 9f, 2f, 3f], good);
    }


    private static (Func<GraphBuilder, Value[], Value> Build, OpRunner.Feed[] Feeds) Case(string name)
    {
        var random = new Random(name.Length * 7919);
        OpRunner.Feed Feed(string input, params int[] shape) => OpRunner.Feed.Uniform(random, 2f, input, shape);
        return name switch
        {
            "softmax" => ((g, v) => g.Softmax(v[0]), [Feed("x", 5, 300)]),
            "layer_norm" => ((g, v) => g.LayerNorm(v[0], v[1], v[2]), [Feed("x", 4, 77), Feed("w", 77), Feed("b", 77)]),
            "rms_norm" => ((g, v) => g.RmsNorm(v[0], v[1]), [Feed("x", 3, 530), Feed("w", 530)]),
            "matmul" => ((g, v) => g.MatMul(v[0], v[1]), [Feed("a", 2, 70, 45), Feed("b", 45, 66)]),
            "linear_bias" => ((g, v) => g.Linear(v[0], v[1], v[2]), [Feed("x", 67, 33), Feed("w", 65, 33), Feed("b", 65)]),
            "transposed_matmul" => ((g, v) => g.MatMul(v[0], v[1], transposeA: true, transposeB: true), [Feed("a", 40, 70), Feed("b", 66, 40)]),
            _ => throw new ArgumentException(name),
        };
    }
}
