using MeLFusion.Native.Backends.Cuda;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Interop;
using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Ops;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The cuda backend's row-major to cuBLAS mapping (<see cref="CublasGemm"/>), proven without a GPU: a backend that runs
/// every kernel in the emulator but hands each GEMM that cuBLAS could take to a reference implementation of
/// cublasGemmStridedBatchedEx's documented column-major semantics, bias through the bias_add_f32 epilogue like the
/// cuda backend. The matmul and linear fixtures (transposes, broadcasts, permuted views) must still match PyTorch.
/// </summary>
public class CublasMappingTests
{
    private const float Atol = 1e-4f, Rtol = 1e-4f; // as MatMulTests

    [Theory]
    [InlineData("matmul")]
    [InlineData("linear")]
    public void FixturesMatchTorchThroughTheCublasMapping(string fixtureName)
    {
        using var fixture = Fixture.Open(fixtureName);
        using var backend = new CublasReferenceBackend();
        foreach (string name in fixture.Cases)
        {
            int cublas = backend.CublasCalls, fallback = backend.FallbackCalls;
            float[] actual = fixtureName == "matmul" ? RunMatMul(backend, fixture, name) : RunLinear(backend, fixture, name);
            Check.Close(fixture.F32(name + ".out"), actual, Atol, Rtol, $"{fixtureName} {name}");
            // Only K = 0 (empty_k, zero_in) is left to gemm_f32, which writes the zeros (plus bias) cuBLAS might not.
            bool emptyK = name is "empty_k" or "zero_in";
            Assert.True(emptyK ? backend.FallbackCalls > fallback && backend.CublasCalls == cublas : backend.FallbackCalls == fallback,
                $"{fixtureName} {name}: {backend.CublasCalls - cublas} cuBLAS and {backend.FallbackCalls - fallback} kernel GEMMs");
        }
    }

    /// <summary>An operand with no unit stride in its matrix dims cannot be a cuBLAS operand: it falls back to gemm_f32.</summary>
    [Fact]
    public void OperandWithoutUnitStrideFallsBackToTheKernel()
    {
        var random = new Random(5);
        var x = Enumerable.Range(0, 7 * 9 * 2).Select(_ => (float)random.NextDouble()).ToArray();
        var w = Enumerable.Range(0, 9 * 4).Select(_ => (float)random.NextDouble()).ToArray();
        // x stored [M=7, K=9, B=2] viewed as [B, M, K]: strides (1, 18, 2), neither matrix stride is 1.
        Value Build(GraphBuilder g, Value[] v) => g.MatMul(g.Permute(v[0], 2, 0, 1), v[1]);
        var feeds = new[] { new OpRunner.Feed("x", [7, 9, 2], x), new OpRunner.Feed("w", [9, 4], w) };
        using var backend = new CublasReferenceBackend();
        var actual = OpRunner.Run(backend, Build, feeds);
        Check.Close(OpRunner.Run("cpu", Build, feeds), actual, 1e-5f, 1e-5f, "strided matmul");
        Assert.Equal((0, 1), (backend.CublasCalls, backend.FallbackCalls));
    }

    private static float[] RunMatMul(IBackend backend, Fixture fixture, string name)
    {
        string permuteA = fixture.Meta(name + ".permute_a"), permuteB = fixture.Meta(name + ".permute_b");
        bool transposeA = fixture.MetaBool(name + ".transpose_a"), transposeB = fixture.MetaBool(name + ".transpose_b");
        return OpRunner.Run(backend, (g, x) => g.MatMul(Permuted(g, x[0], permuteA), Permuted(g, x[1], permuteB), transposeA, transposeB),
            fixture.Feed(name + ".a", "a"), fixture.Feed(name + ".b", "b"));
    }

    private static float[] RunLinear(IBackend backend, Fixture fixture, string name)
    {
        bool hasBias = fixture.MetaBool(name + ".bias");
        var feeds = new List<OpRunner.Feed> { fixture.Feed(name + ".x", "x"), fixture.Feed(name + ".weight", "weight") };
        if (hasBias) feeds.Add(fixture.Feed(name + ".bias", "bias"));
        return OpRunner.Run(backend, (g, x) => g.Linear(x[0], x[1], hasBias ? x[2] : null), [.. feeds]);
    }

    private static Value Permuted(GraphBuilder g, Value x, string permutation) =>
        permutation.Length == 0 ? x : g.Permute(x, permutation.Split(',').Select(int.Parse).ToArray());

    /// <summary>cuda-emulated, except that GEMMs cuBLAS could run go to <see cref="ReferenceGemm"/>.</summary>
    private sealed class CublasReferenceBackend : CudaKernelBackend
    {
        private readonly CudaEmulatedBackend _emulator = new();

        public int CublasCalls { get; private set; }
        public int FallbackCalls { get; private set; }

        public override string Name => "cublas-reference";
        public override DeviceBuffer Allocate(long bytes, string purpose) => _emulator.Allocate(bytes, purpose);
        public override void CopyFromHost(ReadOnlySpan<byte> source, nint destination) => _emulator.CopyFromHost(source, destination);
        public override void CopyToHost(nint source, Span<byte> destination) => _emulator.CopyToHost(source, destination);
        public override void Launch(string kernel, Dim3 grid, Dim3 block, uint sharedBytes, params ReadOnlySpan<LaunchArg> args) =>
            _emulator.Launch(kernel, grid, block, sharedBytes, args);
        protected override void WaitForDevice() { }

        protected override void Gemm(in GemmCall call)
        {
            if (!CublasGemm.TryCreate(call, out var gemm))
            {
                FallbackCalls++;
                base.Gemm(call);
                return;
            }
            CublasCalls++;
            Assert.Equal(CuBlas.DataType.R32F, gemm.Type);
            ReferenceGemm(gemm);
            if (call.Bias != 0) AddBias(call);
        }

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing);
            _emulator.Dispose();
        }

        /// <summary>
        /// cublasGemmStridedBatchedEx with alpha 1, beta 0, as its documentation defines it: column-major C (M×N, ldc)
        /// = op(A) (M×K) · op(B) (K×N), op(X)(r, c) = X[r + c·ld] for N and X[c + r·ld] for T. Also checks the
        /// documented leading-dimension limits.
        /// </summary>
        private static unsafe void ReferenceGemm(CublasGemm g)
        {
            Assert.True(g.Lda >= Math.Max(1, g.TransA == CuBlas.Operation.N ? g.M : g.K), $"lda {g.Lda}");
            Assert.True(g.Ldb >= Math.Max(1, g.TransB == CuBlas.Operation.N ? g.K : g.N), $"ldb {g.Ldb}");
            Assert.True(g.Ldc >= Math.Max(1, g.M), $"ldc {g.Ldc}");
            for (int batch = 0; batch < g.BatchCount; batch++)
            {
                float* a = (float*)g.A + batch * g.StrideA, b = (float*)g.B + batch * g.StrideB, c = (float*)g.C + batch * g.StrideC;
                for (int i = 0; i < g.M; i++)
                    for (int j = 0; j < g.N; j++)
                    {
                        double sum = 0;
                        for (int l = 0; l < g.K; l++)
                        {
                            float opA = g.TransA == CuBlas.Operation.N ? a[i + (long)l * g.Lda] : a[l + (long)i * g.Lda];
                            float opB = g.TransB == CuBlas.Operation.N ? b[l + (long)j * g.Ldb] : b[j + (long)l * g.Ldb];
                            sum += (double)opA * opB;
                        }
                        c[i + (long)j * g.Ldc] = (float)sum;
                    }
            }
        }
    }
}
