using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// Group norm + SiLU as in the UNet's resnet blocks: x [1, 320, 256, 16], 32 groups, affine, fused SiLU.
/// PyTorch reference (2 threads): F.silu(F.group_norm(x, 32, w, b, 1e-5)).
/// </summary>
public class GroupNormBenchmark : PlanBenchmark
{
    private ExecutionPlan _plan = null!;

    [GlobalSetup]
    public void Setup() => _plan = Compile(g => g.Output("y", g.GroupNorm(g.Input("x", DType.F32, 1, 320, 256, 16),
        g.Input("weight", DType.F32, 320), g.Input("bias", DType.F32, 320), groups: 32, eps: 1e-5f, silu: true)), scale: 2f);

    [Benchmark]
    public void GroupNormSilu320() => _plan.Run();
}
