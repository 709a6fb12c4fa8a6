using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// SGEMM through the graph: a square 2048³ matmul (17.2 GFLOP) and a UNet-sized linear layer, x [1, 4096, 320] ·
/// Wᵀ [320 → 1280] + bias. PyTorch 1.13 reference, same box, torch.set_num_threads(2): <c>a @ b</c> and
/// <c>F.linear(x, w, b)</c> (OpenBLAS).
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class GemmBenchmark
{
    private const int Size = 2048, Tokens = 4096, InFeatures = 320, OutFeatures = 1280;

    private CpuBackend _backend = null!;
    private ExecutionPlan _square = null!;
    private ExecutionPlan _linear = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var random = new Random(42);

        var g = new GraphBuilder();
        g.Output("c", g.MatMul(g.Input("a", DType.F32, Size, Size), g.Input("b", DType.F32, Size, Size)));
        _square = g.Compile(_backend);
        _square.SetInput<float>("a", RandomValues(random, Size * Size));
        _square.SetInput<float>("b", RandomValues(random, Size * Size));

        g = new GraphBuilder();
        g.Output("y", g.Linear(g.Input("x", DType.F32, 1, Tokens, InFeatures), g.Input("w", DType.F32, OutFeatures, InFeatures),
            g.Input("bias", DType.F32, OutFeatures)));
        _linear = g.Compile(_backend);
        _linear.SetInput<float>("x", RandomValues(random, Tokens * InFeatures));
        _linear.SetInput<float>("w", RandomValues(random, OutFeatures * InFeatures));
        _linear.SetInput<float>("bias", RandomValues(random, OutFeatures));
    }

    [Benchmark]
    public void Sgemm2048() => _square.Run();

    [Benchmark]
    public void Linear4096x320To1280() => _linear.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _square.Dispose();
        _linear.Dispose();
        _backend.Dispose();
    }

    private static float[] RandomValues(Random random, int count)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = random.NextSingle() * 2 - 1;
        return values;
    }
}
