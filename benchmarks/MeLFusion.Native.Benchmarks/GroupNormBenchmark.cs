using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// Group norm + SiLU as in the UNet's resnet blocks: x [1, 320, 256, 16], 32 groups, affine, fused SiLU.
/// PyTorch reference (2 threads): F.silu(F.group_norm(x, 32, w, b, 1e-5)).
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class GroupNormBenchmark
{
    private CpuBackend _backend = null!;
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 320, 256, 16);
        var weight = g.Input("weight", DType.F32, 320);
        var bias = g.Input("bias", DType.F32, 320);
        g.Output("y", g.GroupNorm(x, weight, bias, groups: 32, eps: 1e-5f, silu: true));
        _plan = g.Compile(_backend);
        var random = new Random(1);
        _plan.SetInput<float>("x", Enumerable.Range(0, 320 * 256 * 16).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray());
        _plan.SetInput<float>("weight", Enumerable.Range(0, 320).Select(_ => (float)random.NextDouble() + 0.5f).ToArray());
        _plan.SetInput<float>("bias", Enumerable.Range(0, 320).Select(_ => (float)random.NextDouble() - 0.5f).ToArray());
    }

    [Benchmark]
    public void GroupNormSilu320() => _plan.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _plan.Dispose();
        _backend.Dispose();
    }
}
