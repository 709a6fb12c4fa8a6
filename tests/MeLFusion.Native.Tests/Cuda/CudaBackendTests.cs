using MeLFusion.Native.Backends.Cuda;
using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Cuda;

/// <summary>
/// The real cuda backend. Without a GPU (here and in CI) only its refusal is checked; on a GPU (scripts/gpu-check.sh)
/// graph capture, cuBLAS against gemm_f32, and a device error reported after a graph replay.
/// </summary>
public class CudaBackendTests(ITestOutputHelper output)
{
    [Fact]
    public void WithoutAGpuCreatingItThrowsCudaUnavailable()
    {
        if (CudaBackend.IsSupported)
        {
            using var backend = new CudaBackend();
            output.WriteLine($"GPU present: {backend.Device}; cuBLAS: {backend.UsesCublas}");
            Assert.Equal("cuda", backend.Name);
            return;
        }
        var error = Assert.Throws<CudaUnavailableException>(() => new CudaBackend());
        output.WriteLine(error.Message);
        Assert.Contains("--device cpu", error.Message);
    }

    [Fact]
    public void CapturedGraphReplaysThePlanWithNewInputs()
    {
        if (!GpuPresent()) return;
        using var backend = new CudaBackend();
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 4, 77, 64);
        var w = g.Input("w", DType.F32, 96, 64);
        var b = g.Input("b", DType.F32, 96);
        var ids = g.Input("ids", DType.I64, 5);
        var h = g.Gelu(g.Linear(g.LayerNorm(x, null, null), w, b));
        g.Output("y", g.Softmax(g.MatMul(h, h, transposeB: true)));
        g.Output("e", g.Embedding(ids, w));
        using var plan = g.Compile(backend);
        var random = new Random(1);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var weights = Values(96 * 64).Select(v => v * 0.2f).ToArray(); // scores of order 1: softmax stays well conditioned
        var bias = Values(96);
        plan.SetInput<float>("w", weights);
        plan.SetInput<float>("b", bias);
        plan.SetInput<long>("ids", [3, 0, 95, 7, 7]);
        plan.SetInput<float>("x", Values(4 * 77 * 64));
        using var graph = backend.CaptureGraph(plan);

        var input = Values(4 * 77 * 64);
        plan.SetInput<float>("x", input);
        graph.Run();
        var replayed = plan.ReadOutput<float>("y");
        plan.Run();
        Assert.Equal(plan.ReadOutput<float>("y"), replayed);

        var expected = OpRunner.Run("cpu", (cg, v) => cg.Softmax(cg.MatMul(cg.Gelu(cg.Linear(cg.LayerNorm(v[0], null, null), v[1], v[2])),
                cg.Gelu(cg.Linear(cg.LayerNorm(v[0], null, null), v[1], v[2])), transposeB: true)),
            new OpRunner.Feed("x", [4, 77, 64], input), new OpRunner.Feed("w", [96, 64], weights), new OpRunner.Feed("b", [96], bias));
        Check.Close(expected, replayed, 1e-5f, 1e-4f, "graph replay vs cpu");
        output.WriteLine($"one replay: {graph.Time(20):F3} ms on {backend.Device.Name}");

        plan.SetInput<long>("ids", [3, 0, 96, 7, 7]);
        var error = Assert.Throws<ArgumentOutOfRangeException>(graph.Run);
        Assert.Contains("id 96 at position 2", error.Message);
    }

    /// <summary>
    /// gemm_f32 on the GPU is the emulator's gemm_f32 to the bit (the same FMA chain per output); cuBLAS sums in another
    /// order, within the matmul tests' tolerance.
    /// </summary>
    [Fact]
    public void CublasTheGemmKernelAndItsEmulationAgree()
    {
        if (!GpuPresent()) return;
        var random = new Random(2);
        var a = Enumerable.Range(0, 3 * 130 * 70).Select(_ => (float)random.NextDouble()).ToArray();
        var b = Enumerable.Range(0, 70 * 90).Select(_ => (float)random.NextDouble()).ToArray();
        var feeds = new[] { new OpRunner.Feed("a", [3, 130, 70], a), new OpRunner.Feed("b", [90, 70], b) };
        Value Build(GraphBuilder g, Value[] v) => g.MatMul(v[0], v[1], transposeB: true);
        var emulated = OpRunner.Run("cuda-emulated", Build, feeds);

        using (var kernel = new CudaBackend(useCublas: false))
            Assert.Equal(emulated, OpRunner.Run(kernel, Build, feeds));
        using var cublas = new CudaBackend(useCublas: true);
        Assert.True(cublas.UsesCublas);
        Check.Close(emulated, OpRunner.Run(cublas, Build, feeds), 1e-4f, 1e-5f, "cuBLAS vs gemm_f32");
    }

    private bool GpuPresent()
    {
        if (CudaBackend.IsSupported) return true;
        output.WriteLine("not run: no GPU on this machine (scripts/gpu-check.sh runs it on one)");
        return false;
    }
}
