using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>Pooling the image encoder's [B, 4096, 320] features to the text encoder's [B, 77, 1024] as one 2-D pool.</summary>
public class AdaptiveAvgPoolBenchmark : PlanBenchmark
{
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup() => _plan = Compile(g => g.Output("pooled", g.AdaptiveAvgPool2d(g.Input("features", DType.F32, 1, 4096, 320), 77, 1024)));

    [Benchmark]
    public void Pool4096To77() => _plan.Run();
}
