using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>Vocoder upsampler: 1024 -> 512 channels, kernel 16, stride 5, padding (16 - 5) / 2 = 5, on [1, 1024, 1024].</summary>
public class ConvTranspose1dBenchmark : PlanBenchmark
{
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup() => _plan = Compile(g => g.Output("y", g.ConvTranspose1d(g.Input("x", DType.F32, 1, 1024, 1024),
        g.Input("weight", DType.F32, 1024, 512, 16), g.Input("bias", DType.F32, 512), stride: 5, padding: (16 - 5) / 2)), scale: 0.1f);

    [Benchmark]
    public void ConvTranspose1d1024() => _plan.Run();
}
