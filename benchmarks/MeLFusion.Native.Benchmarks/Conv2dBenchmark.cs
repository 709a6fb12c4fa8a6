using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>UNet resnet conv at the latent's mid resolution: 320 -> 320 channels, 3x3, padding 1, on [1, 320, 256, 16].</summary>
public class Conv2dBenchmark : PlanBenchmark
{
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup() => _plan = Compile(g => g.Output("y", g.Conv2d(g.Input("x", DType.F32, 1, 320, 256, 16),
        g.Input("weight", DType.F32, 320, 320, 3, 3), g.Input("bias", DType.F32, 320), stride: 1, padding: 1)), scale: 0.1f);

    [Benchmark]
    public void Conv2d320() => _plan.Run();
}
