using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>Pooling the image encoder's [B, 4096, 320] features to the text encoder's [B, 77, 1024] as one 2-D pool.</summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class AdaptiveAvgPoolBenchmark
{
    private CpuBackend _backend = null!;
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var g = new GraphBuilder();
        var features = g.Input("features", DType.F32, 1, 4096, 320);
        g.Output("pooled", g.AdaptiveAvgPool2d(features, 77, 1024));
        _plan = g.Compile(_backend);
        var random = new Random(1);
        var data = new float[4096 * 320];
        for (int i = 0; i < data.Length; i++) data[i] = (float)random.NextDouble();
        _plan.SetInput<float>("features", data);
    }

    [Benchmark]
    public void Pool4096To77() => _plan.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _plan.Dispose();
        _backend.Dispose();
    }
}
