using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The emulator's warp matrix functions (nvcuda::wmma, kernels/emu/mma_emu.h) through the GEMM test kernels of
/// kernels/emu/tests/wmma_kernels.cu: results against a CPU product under every schedule, a planted missing barrier
/// before load_matrix_sync, and the misuse CUDA forbids (bad leading dimension, part of a warp, lanes that disagree).
/// </summary>
public class WmmaEmulationTests
{
    private const int M = 64, N = 64, K = 48;
    private const float Alpha = 0.5f;

    /// <summary>Dynamic shared memory of the GEMM kernels: enough for every staging layout.</summary>
    private const uint GemmSharedBytes = 8192;

    public static TheoryData<string, EmulatorSchedule> KernelsAndSchedules()
    {
        var data = new TheoryData<string, EmulatorSchedule>();
        foreach (string kernel in new[] { "emu_wmma_gemm_f16", "emu_wmma_gemm_bf16" })
            foreach (var schedule in new[] { EmulatorSchedule.InOrder, EmulatorSchedule.Reverse, EmulatorSchedule.Random })
                data.Add(kernel, schedule);
        return data;
    }

    /// <summary>
    /// Inputs are multiples of 1/8 in [-1, 1] (exact in f16 and bf16) and every partial sum is a multiple of 1/64 far
    /// below 2^24 / 64, so the product is exact whatever the summation order: the comparison is bitwise.
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelsAndSchedules))]
    public void GemmMatchesTheCpuProduct(string kernel, EmulatorSchedule schedule)
    {
        var (a, b, c0) = Operands(seed: 5);
        bool columnMajorOut = kernel.EndsWith("bf16", StringComparison.Ordinal);
        float[] actual = RunGemm(kernel, schedule, seed: 3, a, b, c0);
        Assert.Equal(Expected(a, b, c0, columnMajorOut), actual);
    }

    [Fact]
    public void PlantedMissingBarrierBeforeLoadMatrixSyncIsCaughtByReverseAndRandomSchedules()
    {
        var (a, b, c0) = Operands(seed: 6);
        var expected = Expected(a, b, c0, columnMajorOut: false);
        Assert.Equal(expected, RunGemm("emu_wmma_gemm_f16", EmulatorSchedule.Reverse, 0, a, b, c0));
        Assert.Contains(RunGemm("emu_wmma_gemm_f16_missing_barrier", EmulatorSchedule.Reverse, 0, a, b, c0), float.IsNaN);
        foreach (ulong seed in new ulong[] { 1, 2, 3 })
            Assert.Contains(RunGemm("emu_wmma_gemm_f16_missing_barrier", EmulatorSchedule.Random, seed, a, b, c0), float.IsNaN);
    }

    [Fact]
    public void LeadingDimensionThatIsNotSixteenBytesIsReportedWithTheLine()
    {
        var error = LaunchExpectingFailure("emu_wmma_bad_ldm");
        Assert.Contains($"wmma::load_matrix_sync at wmma_kernels.cu:{EmulatorHarnessTests.SourceLine("wmma_kernels.cu", "bad-ldm")}", error.Message);
        Assert.Contains("ldm 12 is not a multiple of 8 elements", error.Message);
    }

    [Fact]
    public void MmaSyncWithHalfTheWarpExitedCanNeverComplete()
    {
        var error = LaunchExpectingFailure("emu_wmma_half_warp");
        Assert.Contains($"wmma::mma_sync at wmma_kernels.cu:{EmulatorHarnessTests.SourceLine("wmma_kernels.cu", "half-warp")}", error.Message);
        Assert.Contains("lane 16", error.Message);
        Assert.Contains("has exited and can never arrive", error.Message);
    }

    [Fact]
    public void LanesLoadingDifferentTilesAreReported()
    {
        var error = LaunchExpectingFailure("emu_wmma_lanes_disagree");
        Assert.Contains($"wmma::load_matrix_sync at wmma_kernels.cu:{EmulatorHarnessTests.SourceLine("wmma_kernels.cu", "lanes-disagree")}", error.Message);
        Assert.Contains("lanes disagree", error.Message);
        Assert.Contains("lane 5 passes", error.Message);
    }

    private static (float[] A, float[] B, float[] C0) Operands(int seed)
    {
        var random = new Random(seed);
        float[] Eighths(int count) => Enumerable.Range(0, count).Select(_ => random.Next(-8, 9) / 8f).ToArray();
        return (Eighths(M * K), Eighths(K * N), Eighths(M * N));
    }

    /// <summary>alpha·(A·B) + c0, row-major [M][N] or column-major [N][M].</summary>
    private static float[] Expected(float[] a, float[] b, float[] c0, bool columnMajorOut)
    {
        var result = new float[M * N];
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double sum = 0;
                for (int k = 0; k < K; k++) sum += (double)a[i * K + k] * b[k * N + j];
                result[columnMajorOut ? j * M + i : i * N + j] = (float)(Alpha * sum + c0[i * N + j]);
            }
        return result;
    }

    private static float[] RunGemm(string kernel, EmulatorSchedule schedule, ulong seed, float[] a, float[] b, float[] c0)
    {
        using var device = new EmulatedDevice(schedule, seed);
        bool bf16 = kernel.Contains("bf16", StringComparison.Ordinal);
        Tensor Operand(float[] values) => bf16
            ? device.Upload(values.Select(FloatConversions.SingleToBFloat16).ToArray(), DType.BF16)
            : device.Upload(values.Select(v => (Half)v).ToArray(), DType.F16);
        var output = device.Allocate(DType.F32, M * N);
        device.Launch(kernel, (N / 32, M / 32), 128, GemmSharedBytes, Operand(a), Operand(b), device.Upload(c0, DType.F32),
            output, M, N, K, Alpha);
        return device.Download<float>(output);
    }

    private static KernelLaunchException LaunchExpectingFailure(string kernel)
    {
        using var device = new EmulatedDevice();
        var a = device.Upload(Enumerable.Range(0, 512).Select(i => (Half)(i % 7)).ToArray(), DType.F16);
        var y = device.Allocate(DType.F32, 256);
        var error = Assert.Throws<KernelLaunchException>(() => device.Launch(kernel, 1, 64, 0, a, y));
        Assert.Equal(kernel, error.Kernel);
        return error;
    }
}
