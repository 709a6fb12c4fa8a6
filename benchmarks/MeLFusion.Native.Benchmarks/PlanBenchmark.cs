using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// Base of the op benchmarks: compiles graphs on the CPU backend, fills their f32 inputs with seeded uniform values,
/// and disposes everything after the run. A benchmark method is then just <c>plan.Run()</c>.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public abstract class PlanBenchmark
{
    private readonly List<ExecutionPlan> _plans = [];
    private readonly Random _random = new(42);

    protected CpuBackend Backend { get; } = new();

    /// <summary>Compiles the graph <paramref name="build"/> writes; every f32 input gets uniform values in ±<paramref name="scale"/>.</summary>
    protected ExecutionPlan Compile(Action<GraphBuilder> build, float scale = 1f)
    {
        var g = new GraphBuilder();
        build(g);
        var plan = g.Compile(Backend);
        _plans.Add(plan);
        foreach (var (name, input) in g.Inputs)
            if (input.DType == DType.F32)
                plan.SetInput<float>(name, Uniform(checked((int)input.Shape.ElementCount), scale));
        return plan;
    }

    protected float[] Uniform(int count, float scale)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (_random.NextSingle() * 2 - 1) * scale;
        return values;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var plan in _plans) plan.Dispose();
        _plans.Clear();
        Backend.Dispose();
    }
}
