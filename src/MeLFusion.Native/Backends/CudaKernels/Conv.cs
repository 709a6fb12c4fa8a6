using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/conv2d.cu, kernels/conv1d.cu and kernels/conv_transpose1d.cu: implicit GEMMs (kernels/implicit_gemm.cuh) with
/// 64x64 output tiles of (output channel, output position), 256 threads per block; bias, residual and the input
/// leaky-ReLU fused. The ops' CPU workspaces go unused here.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<Conv2dOp>, IKernel<Conv1dOp>, IKernel<ConvTranspose1dOp>
{
    /// <summary>Output tile of the convolution kernels (channels and positions) and their block size.</summary>
    private const int ConvTile = 64, ConvThreads = 256;

    public void Execute(Conv2dOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), weight = args.Input(1), y = args.Output;
        var g = op.Geometry(x.Shape, weight.Shape);
        if (y.ElementCount == 0) return;
        int positions = ConvPositions(op.Name, (long)g.Batch * g.OutHeight * g.OutWidth, (long)g.InChannels * g.KernelHeight * g.KernelWidth);
        Launch("conv2d_f32", ConvGrid(positions, g.OutChannels), ConvThreads, 0,
            x, weight, Optional(args, op.BiasIndex), Optional(args, op.ResidualIndex), y,
            g.Batch, g.InChannels, g.OutChannels, g.Height, g.Width, g.KernelHeight, g.KernelWidth, g.Stride, g.Padding,
            g.OutHeight, g.OutWidth);
    }

    public void Execute(Conv1dOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), weight = args.Input(1), y = args.Output;
        var g = op.Geometry(x.Shape, weight.Shape);
        if (y.ElementCount == 0) return;
        int positions = ConvPositions(op.Name, (long)g.Batch * g.OutLength, (long)g.InChannels * g.Kernel);
        Launch("conv1d_f32", ConvGrid(positions, g.OutChannels), ConvThreads, 0,
            x, weight, Optional(args, op.BiasIndex), Optional(args, op.ResidualIndex), y,
            g.Batch, g.InChannels, g.OutChannels, g.Length, g.Kernel, g.Stride, g.Padding, g.Dilation, g.OutLength,
            op.InputLeakySlope.HasValue ? 1 : 0, op.InputLeakySlope ?? 0f);
    }

    public void Execute(ConvTranspose1dOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), weight = args.Input(1), y = args.Output;
        var g = op.Geometry(x.Shape, weight.Shape);
        if (y.ElementCount == 0) return;
        // One grid layer per output phase, as wide as the longest phase (ceil(Lout / stride) positions per batch item).
        long phaseLength = (g.OutLength + g.Stride - 1) / g.Stride;
        int positions = ConvPositions(op.Name, g.Batch * phaseLength, (long)g.InChannels * ((g.Kernel + g.Stride - 1) / g.Stride));
        if (g.Stride > 65535) throw new NotSupportedException($"{op.Name}: stride {g.Stride} exceeds 65535 phases (grid z)");
        var (columns, rows) = ConvGrid(positions, g.OutChannels);
        Launch("conv_transpose1d_f32", (columns, rows, g.Stride), ConvThreads, 0,
            x, weight, Optional(args, op.HasBias ? 2 : -1), y,
            g.Batch, g.InChannels, g.OutChannels, g.Length, g.Kernel, g.Stride, g.Padding, g.OutLength,
            op.InputLeakySlope.HasValue ? 1 : 0, op.InputLeakySlope ?? 0f);
    }

    /// <summary>The GEMM's column count (output positions), checked with its reduction length against the kernels' int indices.</summary>
    private static int ConvPositions(string op, long positions, long reduction)
    {
        if (positions > int.MaxValue - ConvTile || reduction > int.MaxValue - ConvTile)
            throw new NotSupportedException($"{op}: {positions} output positions or a reduction of {reduction} exceed the kernel's 32-bit indexing");
        return (int)positions;
    }

    /// <summary>Blocks over output positions (x) and output channels (y, at most 65535 tiles).</summary>
    private static (int Columns, int Rows) ConvGrid(int positions, int outChannels)
    {
        int rows = (outChannels + ConvTile - 1) / ConvTile;
        if (rows > 65535) throw new NotSupportedException($"{outChannels} output channels exceed 65535 tiles of {ConvTile}");
        return ((positions + ConvTile - 1) / ConvTile, rows);
    }

    private static LaunchArg Optional(in KernelArgs args, int index) => index >= 0 ? args.Input(index) : LaunchArg.NullPointer;
}
