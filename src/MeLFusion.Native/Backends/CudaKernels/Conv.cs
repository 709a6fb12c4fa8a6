using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/conv2d.cu, kernels/conv1d.cu and kernels/conv_transpose1d.cu: implicit GEMMs (kernels/implicit_gemm.cuh) with
/// 64x64 output tiles of (output channel, output position), 256 threads per block; bias, residual and the input
/// leaky-ReLU fused. The ops' CPU workspaces go unused here. kernels/conv_grad.cu: their input and weight gradients,
/// the same GEMM tile over (input channel, input position) and over (output channel, input channel · tap), the
/// weight gradient's long reduction cut into <see cref="ConvWeightGradientSlices"/>.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<Conv2dOp>, IKernel<Conv1dOp>, IKernel<ConvTranspose1dOp>,
    IKernel<Conv2dInputGradientOp>, IKernel<Conv2dWeightGradientOp>, IKernelWorkspace<Conv2dWeightGradientOp>,
    IKernel<Conv1dInputGradientOp>, IKernel<Conv1dWeightGradientOp>, IKernelWorkspace<Conv1dWeightGradientOp>
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

    public void Execute(Conv2dInputGradientOp op, in KernelArgs args)
    {
        Tensor dy = args.Input(0), weight = args.Input(1), dx = args.Output;
        var g = op.Geometry(dy.Shape, weight.Shape);
        if (dx.ElementCount == 0) return;
        int positions = ConvPositions(op.Name, (long)g.Batch * g.Height * g.Width, (long)g.OutChannels * g.KernelHeight * g.KernelWidth);
        Launch("conv2d_input_grad_f32", ConvGrid(positions, g.InChannels), ConvThreads, 0,
            dy, weight, dx, g.Batch, g.InChannels, g.OutChannels, g.Height, g.Width, g.KernelHeight, g.KernelWidth, g.Stride,
            g.Padding, g.OutHeight, g.OutWidth);
    }

    public long WorkspaceBytes(Conv2dWeightGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvWeightGradientSlices.Of(op.Geometry(inputs[0].Shape, inputs[1].Shape)).WorkspaceBytes(output.Shape.ElementCount);

    public void Execute(Conv2dWeightGradientOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), dy = args.Input(1), dw = args.Output;
        var g = op.Geometry(x.Shape, dy.Shape);
        var slices = ConvWeightGradientSlices.Of(g);
        int depth = ConvPositions(op.Name, (long)g.InChannels * g.KernelHeight * g.KernelWidth, (long)g.Batch * g.OutHeight * g.OutWidth);
        var (columns, rows) = ConvGrid(depth, g.OutChannels);
        Launch("conv2d_weight_grad_f32", (columns, rows, slices.Count), ConvThreads, 0,
            x, dy, slices.Count > 1 ? args.Workspace : dw, g.Batch, g.InChannels, g.OutChannels, g.Height, g.Width, g.KernelHeight,
            g.KernelWidth, g.Stride, g.Padding, g.OutHeight, g.OutWidth, slices.Length);
        SumSlices(slices, args.Workspace, dw);
    }

    public void Execute(Conv1dInputGradientOp op, in KernelArgs args)
    {
        Tensor dy = args.Input(0), weight = args.Input(1), dx = args.Output;
        var g = op.Geometry(dy.Shape, weight.Shape);
        if (dx.ElementCount == 0) return;
        int positions = ConvPositions(op.Name, (long)g.Batch * g.Length, (long)g.OutChannels * g.Kernel);
        Launch("conv1d_input_grad_f32", ConvGrid(positions, g.InChannels), ConvThreads, 0,
            dy, weight, dx, g.Batch, g.InChannels, g.OutChannels, g.Length, g.Kernel, g.Stride, g.Padding, g.Dilation, g.OutLength);
    }

    public long WorkspaceBytes(Conv1dWeightGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvWeightGradientSlices.Of(op.Geometry(inputs[0].Shape, inputs[1].Shape)).WorkspaceBytes(output.Shape.ElementCount);

    public void Execute(Conv1dWeightGradientOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), dy = args.Input(1), dw = args.Output;
        var g = op.Geometry(x.Shape, dy.Shape);
        var slices = ConvWeightGradientSlices.Of(g);
        int depth = ConvPositions(op.Name, (long)g.InChannels * g.Kernel, (long)g.Batch * g.OutLength);
        var (columns, rows) = ConvGrid(depth, g.OutChannels);
        float? slope = op.Forward.InputLeakySlope;
        Launch("conv1d_weight_grad_f32", (columns, rows, slices.Count), ConvThreads, 0,
            x, dy, slices.Count > 1 ? args.Workspace : dw, g.Batch, g.InChannels, g.OutChannels, g.Length, g.Kernel, g.Stride,
            g.Padding, g.Dilation, g.OutLength, slope.HasValue ? 1 : 0, slope ?? 0f, slices.Length);
        SumSlices(slices, args.Workspace, dw);
    }

    /// <summary>Adds the slices' partial weight gradients in <paramref name="workspace"/> into <paramref name="dw"/>; nothing for one slice.</summary>
    private void SumSlices(ConvWeightGradientSlices slices, Tensor workspace, Tensor dw)
    {
        if (slices.Count > 1)
            LaunchElementwise("conv_slice_sum_f32", dw.ElementCount, workspace, dw, dw.ElementCount, slices.Count);
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

/// <summary>
/// How a weight gradient's reduction (images × output positions) is cut into equal slices, one grid layer each, when
/// the gradient has too few 64×64 tiles to occupy a GPU: each slice writes a partial gradient to its own layer of the
/// workspace and conv_slice_sum_f32 adds them in slice order. A pure function of the shapes (never of the device), so
/// the cuda and cuda-emulated backends compute bitwise the same sums.
/// </summary>
internal readonly record struct ConvWeightGradientSlices(int Count, int Length)
{
    /// <summary>Blocks worth launching: several per SM on current GPUs (132 SMs on an H100).</summary>
    private const long TargetBlocks = 512;

    /// <summary>Shortest slice: 16 K-steps of the 64×64 tile, so loading and storing a tile stays a small share of its work.</summary>
    public const int MinLength = 256;

    public static ConvWeightGradientSlices Of(in Conv2dGeometry g) =>
        Create(g.OutChannels, (long)g.InChannels * g.KernelHeight * g.KernelWidth, (long)g.Batch * g.OutHeight * g.OutWidth);

    public static ConvWeightGradientSlices Of(in Conv1dGeometry g) =>
        Create(g.OutChannels, (long)g.InChannels * g.Kernel, (long)g.Batch * g.OutLength);

    public static ConvWeightGradientSlices Create(long rows, long columns, long reduction)
    {
        if (reduction == 0) return new(1, 0); // no images: one slice whose empty sums write zeros
        long tiles = ((rows + 63) / 64) * ((columns + 63) / 64);
        long count = Math.Clamp(TargetBlocks / tiles, 1, Math.Max(1, reduction / MinLength));
        // Whole K-steps per slice; rounding up may leave fewer slices than asked for, never an empty one.
        long length = ((reduction + count - 1) / count + 15) / 16 * 16;
        return new((int)((reduction + length - 1) / length), (int)Math.Min(length, int.MaxValue));
    }

    /// <summary>The partial gradients of all slices, or nothing when one slice writes the gradient directly.</summary>
    public long WorkspaceBytes(long gradientElements) => Count > 1 ? Count * gradientElements * sizeof(float) : 0;
}
