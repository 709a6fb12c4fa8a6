using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Strided views (GraphBuilder.Permute / Slice / Reshape) made contiguous by the copy kernel.</summary>
public class PermuteSliceTests
{
    /// <summary>Views only move data, so the output must equal torch's .contiguous() bit for bit.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(CopyOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchExactly(string backend)
    {
        using var fixture = Fixture.Open("permute_slice");
        foreach (var name in fixture.Cases)
        {
            string ops = fixture.Meta(name + ".ops");
            var actual = RawGraph.Run(backend, (g, v) => ApplyViews(g, v[0], ops), RawGraph.Load("permute_slice", name + ".x"));
            RawGraph.Equal(RawGraph.Load("permute_slice", name + ".out"), actual, $"{name} ({ops})");
        }
    }

    /// <summary>4-D permutes big enough to run on several threads, checked against index arithmetic.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(CopyOp), MemberType = typeof(TestBackends))]
    public void PermutesLargeTensorsOnAllPaths(string backend)
    {
        int[] shape = [2, 40, 33, 29];
        var x = RawGraph.Iota(shape);
        foreach (int[] order in new[] { new[] { 0, 2, 3, 1 }, [0, 2, 1, 3], [3, 2, 1, 0], [1, 0, 3, 2], [0, 1, 2, 3] })
        {
            var actual = RawGraph.Run(backend, (g, v) => g.Permute(v[0], order), x);
            RawGraph.Equal(PermuteReference(shape, order), actual, $"permute [{string.Join(", ", order)}]");
        }
    }

    /// <summary>Applies "permute:0,2,1;slice:axis,start,length;reshape:2,-1" (the fixture's spelling) in order.</summary>
    private static Value ApplyViews(GraphBuilder g, Value x, string ops)
    {
        foreach (var op in ops.Split(';'))
        {
            var parts = op.Split(':');
            var args = parts[1].Split(',').Select(int.Parse).ToArray();
            x = parts[0] switch
            {
                "permute" => g.Permute(x, args),
                "slice" => g.Slice(x, args[0], args[1], args[2]),
                "reshape" => g.Reshape(x, args),
                _ => throw new ArgumentException($"unknown view '{parts[0]}'"),
            };
        }
        return x;
    }

    /// <summary>Iota of <paramref name="shape"/> permuted: each output element is its source's flat index.</summary>
    private static RawTensor PermuteReference(int[] shape, int[] order)
    {
        var strides = TensorShape.ContiguousStrides(shape);
        var dims = order.Select(a => shape[a]).ToArray();
        var values = new float[shape.Aggregate(1, (p, d) => p * d)];
        var index = new int[dims.Length];
        for (int flat = 0; flat < values.Length; flat++)
        {
            long source = 0;
            for (int i = 0; i < dims.Length; i++) source += index[i] * strides[order[i]];
            values[flat] = source;
            for (int i = dims.Length - 1; i >= 0 && ++index[i] == dims[i]; i--) index[i] = 0;
        }
        return RawGraph.F32(dims, values);
    }
}
