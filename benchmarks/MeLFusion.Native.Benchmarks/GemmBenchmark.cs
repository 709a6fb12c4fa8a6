using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// SGEMM through the graph: a square 2048³ matmul (17.2 GFLOP) and a UNet-sized linear layer, x [1, 4096, 320] ·
/// Wᵀ [320 → 1280] + bias. PyTorch 1.13 reference, same box, torch.set_num_threads(2): <c>a @ b</c> and
/// <c>F.linear(x, w, b)</c> (OpenBLAS).
/// </summary>
public class GemmBenchmark : PlanBenchmark
{
    private const int Size = 2048, Tokens = 4096, InFeatures = 320, OutFeatures = 1280;

    private ExecutionPlan _square = null!, _linear = null!;

    [GlobalSetup]
    public void Setup()
    {
        _square = Compile(g => g.Output("c", g.MatMul(g.Input("a", DType.F32, Size, Size), g.Input("b", DType.F32, Size, Size))));
        _linear = Compile(g => g.Output("y", g.Linear(g.Input("x", DType.F32, 1, Tokens, InFeatures),
            g.Input("w", DType.F32, OutFeatures, InFeatures), g.Input("bias", DType.F32, OutFeatures))));
    }

    [Benchmark]
    public void Sgemm2048() => _square.Run();

    [Benchmark]
    public void Linear4096x320To1280() => _linear.Run();
}
