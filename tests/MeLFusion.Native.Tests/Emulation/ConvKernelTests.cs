using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The convolution kernels (kernels/conv*.cu) and their gradients (kernels/conv_grad.cu) at shapes the PyTorch fixtures
/// do not reach: more than one 64-wide tile of output channels and of output positions, several 16-deep reduction
/// steps, for the transposed convolution phases longer than one tile, and weight gradients cut into slices. Run with threads in index, reverse and random order and blocks on 1 to 3 OS threads, results
/// must agree to the bit (a missing barrier reads NaN or stale shared memory) and match the CPU backend.
/// </summary>
public class ConvKernelTests
{
    public static TheoryData<string> Cases => new()
    {
        "conv2d", "conv2d_stride2", "conv1d", "conv_transpose1d",
        "conv2d_input_grad", "conv2d_weight_grad", "conv1d_input_grad", "conv1d_weight_grad",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesCpuBitwiseUnderEverySchedule(string name)
    {
        var (build, feeds) = Case(name);
        var inOrder = EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.InOrder, 23, 1);
        Assert.DoesNotContain(inOrder, float.IsNaN);
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Reverse, 23, 2));
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Random, 23, 3));
        // Same sums in another order (and, on cpu, Winograd for 3x3): the conv tests' tolerance covers both.
        Check.Close(OpRunner.Run("cpu", build, feeds), inOrder, 1e-4f, 1e-4f, name);
    }


    private static (Func<GraphBuilder, Value[], Value> Build, OpRunner.Feed[] Feeds) Case(string name)
    {
        var random = new Random(name.Length * 104729);
        OpRunner.Feed Feed(string input, params int[] shape) => OpRunner.Feed.Uniform(random, 1f, input, shape);
        return name switch
        {
            // 70 channels (2 row tiles), 2·9·8 = 144 positions (3 column tiles), reduction 5·9 = 45 (3 steps).
            "conv2d" => ((g, v) => g.Conv2d(v[0], v[1], v[2], stride: 1, padding: 1, residual: v[3]),
                [Feed("x", 2, 5, 9, 8), Feed("w", 70, 5, 3, 3), Feed("b", 70), Feed("r", 2, 70, 9, 8)]),
            "conv2d_stride2" => ((g, v) => g.Conv2d(v[0], v[1], stride: 2, padding: 2),
                [Feed("x", 1, 6, 17, 19), Feed("w", 65, 6, 5, 4)]),
            // Dilation 2 with the fused leaky-ReLU, bias and residual; 66 channels, 80 positions, reduction 54.
            "conv1d" => ((g, v) => g.Conv1d(v[0], v[1], v[2], stride: 1, padding: 2, dilation: 2, inputLeakySlope: 0.1f, residual: v[3]),
                [Feed("x", 2, 18, 40), Feed("w", 66, 18, 3), Feed("b", 66), Feed("r", 2, 66, 40)]),
            // HiFi-GAN's k16 s8 upsampler: Lout 64, phases of 8 outputs x 9 batch items = 72 positions, reduction 10·2.
            "conv_transpose1d" => ((g, v) => g.ConvTranspose1d(v[0], v[1], v[2], stride: 8, padding: 4, inputLeakySlope: 0.1f),
                [Feed("x", 9, 10, 8), Feed("w", 10, 67, 16), Feed("b", 67)]),
            // Gradients (kernels/conv_grad.cu). Stride 2: 66 input channels, 2·9·8 = 144 input positions, reduction 20·9.
            "conv2d_input_grad" => ((g, v) => g.Conv2dInputGradient(v[0], v[1], 9, 8, stride: 2, padding: 1),
                [Feed("dy", 2, 20, 5, 4), Feed("w", 20, 66, 3, 3)]),
            // 70 output channels x 8·9 taps, a reduction of 2·17·16 = 544 positions cut into 2 slices.
            "conv2d_weight_grad" => ((g, v) => g.Conv2dWeightGradient(v[0], v[1], 3, 3, stride: 1, padding: 1),
                [Feed("x", 2, 8, 17, 16), Feed("dy", 2, 70, 17, 16)]),
            "conv1d_input_grad" => ((g, v) => g.Conv1dInputGradient(v[0], v[1], 40, stride: 1, padding: 2, dilation: 2),
                [Feed("dy", 2, 20, 40), Feed("w", 20, 66, 3)]),
            // The fused leaky-ReLU; 66 output channels x 18·3 taps, 600 positions in 2 slices.
            "conv1d_weight_grad" => ((g, v) => g.Conv1dWeightGradient(v[0], v[1], 3, stride: 1, padding: 2, dilation: 2, inputLeakySlope: 0.1f),
                [Feed("x", 2, 18, 300), Feed("dy", 2, 66, 300)]),
            _ => throw new ArgumentException(name),
        };
    }
}
