using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>UNet resnet conv at the latent's mid resolution: 320 -> 320 channels, 3x3, padding 1, on [1, 320, 256, 16].</summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class Conv2dBenchmark
{
    private CpuBackend _backend = null!;
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 320, 256, 16);
        var weight = g.Input("weight", DType.F32, 320, 320, 3, 3);
        var bias = g.Input("bias", DType.F32, 320);
        g.Output("y", g.Conv2d(x, weight, bias, stride: 1, padding: 1));
        _plan = g.Compile(_backend);
        var random = new Random(1);
        _plan.SetInput<float>("x", RandomValues(random, 320 * 256 * 16, 1f));
        _plan.SetInput<float>("weight", RandomValues(random, 320 * 320 * 9, 1f / 54));
        _plan.SetInput<float>("bias", RandomValues(random, 320, 1f));
    }

    [Benchmark]
    public void Conv2d320() => _plan.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _plan.Dispose();
        _backend.Dispose();
    }

    internal static float[] RandomValues(Random random, int count, float scale)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (random.NextSingle() * 2 - 1) * scale;
        return values;
    }
}
