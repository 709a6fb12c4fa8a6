using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>A tensor as raw bytes with its dtype and dims; data-movement ops must reproduce such bits exactly.</summary>
public sealed record RawTensor(DType DType, int[] Shape, byte[] Bytes)
{
    public override string ToString() => $"{DType}[{string.Join(", ", Shape)}]";
}

/// <summary>Runs graphs on raw bytes of any dtype, for ops that only move data (tolerance zero).</summary>
public static class RawGraph
{
    /// <summary>Reads tensor <paramref name="name"/> of tests/fixtures/<paramref name="fixture"/>.safetensors as stored.</summary>
    public static RawTensor Load(string fixture, string name)
    {
        using var file = SafetensorsFile.Open(Path.Combine(Fixture.Directory, fixture + ".safetensors"));
        var entry = file[name];
        return new RawTensor(entry.DType, entry.Shape, file.Bytes(name).ToArray());
    }

    /// <summary>Feeds <paramref name="inputs"/> as graph inputs "in0", "in1", ..., runs the graph and returns its output.</summary>
    public static RawTensor Run(string backendName, Func<GraphBuilder, Value[], Value> build, params RawTensor[] inputs)
    {
        using var backend = TestBackends.Create(backendName);
        return Run(backend, build, inputs);
    }

    /// <summary>As <see cref="Run(string, Func{GraphBuilder, Value[], Value}, RawTensor[])"/> on <paramref name="backend"/>.</summary>
    public static RawTensor Run(IBackend backend, Func<GraphBuilder, Value[], Value> build, params RawTensor[] inputs)
    {
        var g = new GraphBuilder();
        var values = inputs.Select((t, i) => g.Input("in" + i, t.DType, t.Shape)).ToArray();
        var output = g.Output("out", build(g, values));
        using var plan = g.Compile(backend);
        for (int i = 0; i < inputs.Length; i++) plan.SetInput<byte>("in" + i, inputs[i].Bytes);
        plan.Run();
        var bytes = new byte[plan.Output("out").ByteCount];
        plan.ReadOutput<byte>("out", bytes);
        return new RawTensor(output.DType, output.Shape.Dims.ToArray(), bytes);
    }

    /// <summary>Asserts the same dtype, dims and bytes; names the first differing element.</summary>
    public static void Equal(RawTensor expected, RawTensor actual, string what)
    {
        Assert.True(expected.DType == actual.DType && expected.Shape.SequenceEqual(actual.Shape),
            $"{what}: got {actual}, expected {expected}");
        int size = expected.DType.Size();
        for (int i = 0; i < expected.Bytes.Length; i++)
            Assert.True(expected.Bytes[i] == actual.Bytes[i], $"{what}: element {i / size} differs (byte {i % size})");
    }

    /// <summary>f32 values as a raw tensor.</summary>
    public static RawTensor F32(int[] shape, float[] values) =>
        new(DType.F32, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>Random bytes (any bit pattern, NaNs included) as <paramref name="dtype"/> elements.</summary>
    public static RawTensor RandomBits(DType dtype, int seed, params int[] shape)
    {
        var bytes = new byte[shape.Aggregate(1L, (a, d) => a * d) * dtype.Size()];
        new Random(seed).NextBytes(bytes);
        return new RawTensor(dtype, shape, bytes);
    }

    /// <summary>Values 0, 1, 2, ... in row-major order: every element names its own index.</summary>
    public static RawTensor Iota(params int[] shape)
    {
        var values = new float[shape.Aggregate(1L, (a, d) => a * d)];
        for (int i = 0; i < values.Length; i++) values[i] = i;
        return F32(shape, values);
    }
}
