using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.Support;

/// <summary>Backends every op test runs on; the cuda-emulated backend joins this list when it exists.</summary>
public static class TestBackends
{
    public static TheoryData<string> Names => new() { "cpu" };

    public static IBackend Create(string name) => name switch
    {
        "cpu" => new CpuBackend(),
        _ => throw new ArgumentException($"unknown backend '{name}'"),
    };
}

/// <summary>Builds a one-op (or few-op) graph, feeds f32 host data, runs it and returns the f32 output.</summary>
public static class OpRunner
{
    public sealed record Feed(string Name, int[] Shape, float[] Data, DType DType = DType.F32);

    public static float[] Run(string backendName, Func<GraphBuilder, Value[], Value> build, params Feed[] feeds)
    {
        using var backend = TestBackends.Create(backendName);
        return Run(backend, build, feeds);
    }

    public static float[] Run(IBackend backend, Func<GraphBuilder, Value[], Value> build, params Feed[] feeds)
    {
        var g = new GraphBuilder();
        var inputs = feeds.Select(f => g.Input(f.Name, f.DType, f.Shape)).ToArray();
        g.Output("out", build(g, inputs));
        using var plan = g.Compile(backend);
        foreach (var f in feeds) SetInput(plan, f);
        plan.Run();
        var result = plan.Output("out");
        var bytes = new byte[result.ByteCount];
        backend.CopyToHost(result.Data, bytes);
        var values = new float[result.ElementCount];
        if (result.DType is DType.I32)
        {
            var ints = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(bytes);
            for (int i = 0; i < ints.Length; i++) values[i] = ints[i];
        }
        else
        {
            FloatConversions.ToSingle(bytes, result.DType, values, "output");
        }
        return values;
    }

    private static void SetInput(ExecutionPlan plan, Feed f)
    {
        switch (f.DType)
        {
            case DType.I32:
                plan.SetInput<int>(f.Name, f.Data.Select(x => (int)x).ToArray());
                break;
            case DType.I64:
                plan.SetInput<long>(f.Name, f.Data.Select(x => (long)x).ToArray());
                break;
            default:
                var bytes = new byte[f.Data.Length * f.DType.Size()];
                FloatConversions.FromSingle(f.Data, f.DType, bytes);
                plan.SetInput<byte>(f.Name, bytes);
                break;
        }
    }
}
