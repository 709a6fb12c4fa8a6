using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Backends.Cuda;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.Support;

/// <summary>
/// Backends op tests run on. <see cref="Names"/> is the default list (cpu); <see cref="Supporting(Type)"/> lists every
/// backend with a kernel for an op, so the same fixture tests prove the CUDA kernels under emulation, and on a GPU when
/// there is one. MELFUSION_TEST_BACKENDS (comma-separated names, e.g. "cuda") restricts both to those backends.
/// </summary>
public static class TestBackends
{
    public const string SelectionVariable = "MELFUSION_TEST_BACKENDS";

    /// <summary>
    /// Every backend tests know, with its type; "cuda" where a GPU can be used, or where the selection names it (then a
    /// machine without one fails loudly instead of running nothing).
    /// </summary>
    private static readonly Lazy<(string Name, Type Type)[]> Known = new(() =>
    [
        ("cpu", typeof(CpuBackend)),
        ("cuda-emulated", typeof(CudaEmulatedBackend)),
        .. CudaBackend.IsSupported || (Selection()?.Contains("cuda") ?? false) ? new[] { ("cuda", typeof(CudaBackend)) } : [],
    ]);

    public static TheoryData<string> Names => Selected(["cpu"]);

    /// <summary>Every backend whose type implements IKernel&lt;<typeparamref name="TOp"/>&gt;.</summary>
    public static TheoryData<string> Supporting<TOp>() where TOp : Op => Supporting(typeof(TOp));

    /// <summary>Every backend whose type implements IKernel of <paramref name="op"/> (an Op type); for MemberData.</summary>
    public static TheoryData<string> Supporting(Type op)
    {
        var kernel = typeof(IKernel<>).MakeGenericType(op);
        return Selected(Known.Value.Where(b => kernel.IsAssignableFrom(b.Type)).Select(b => b.Name));
    }

    public static IBackend Create(string name) => MeLFusion.Native.Backends.BackendFactory.Create(name);

    private static TheoryData<string> Selected(IEnumerable<string> names)
    {
        var only = Selection();
        var data = new TheoryData<string>();
        foreach (var name in names)
            if (only is not { Length: > 0 } || only.Contains(name))
                data.Add(name);
        return data;
    }

    private static string[]? Selection() =>
        Environment.GetEnvironmentVariable(SelectionVariable)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>Builds a one-op (or few-op) graph, feeds f32 host data, runs it and returns the f32 output.</summary>
public static class OpRunner
{
    public sealed record Feed(string Name, int[] Shape, float[] Data, DType DType = DType.F32)
    {
        /// <summary>An f32 feed of uniform values in [-<paramref name="scale"/>, <paramref name="scale"/>).</summary>
        public static Feed Uniform(Random random, float scale, string name, params int[] shape) =>
            new(name, shape, Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(_ => (float)((random.NextDouble() * 2 - 1) * scale)).ToArray());
    }

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

    public static void SetInput(ExecutionPlan plan, Feed f)
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
