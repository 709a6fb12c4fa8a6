using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>Vocoder upsampler: 1024 -> 512 channels, kernel 16, stride 5, padding (16 - 5) / 2 = 5, on [1, 1024, 1024].</summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class ConvTranspose1dBenchmark
{
    private CpuBackend _backend = null!;
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 1024, 1024);
        var weight = g.Input("weight", DType.F32, 1024, 512, 16);
        var bias = g.Input("bias", DType.F32, 512);
        g.Output("y", g.ConvTranspose1d(x, weight, bias, stride: 5, padding: (16 - 5) / 2));
        _plan = g.Compile(_backend);
        var random = new Random(2);
        _plan.SetInput<float>("x", Conv2dBenchmark.RandomValues(random, 1024 * 1024, 1f));
        _plan.SetInput<float>("weight", Conv2dBenchmark.RandomValues(random, 1024 * 512 * 16, 0.01f));
        _plan.SetInput<float>("bias", Conv2dBenchmark.RandomValues(random, 512, 1f));
    }

    [Benchmark]
    public void ConvTranspose1d1024() => _plan.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _plan.Dispose();
        _backend.Dispose();
    }
}
