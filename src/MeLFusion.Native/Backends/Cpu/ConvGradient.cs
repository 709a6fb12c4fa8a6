using System.Runtime.CompilerServices;
using MeLFusion.Native.Backends.Cpu.Convolution;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// How the CPU computes a convolution's input or weight gradient, a pure function of the geometry. Both work per image
/// on chunks of <see cref="ChunkColumns"/> output positions and the chunk's im2col matrix [depth][<see cref="Stride"/>]
/// (depth = Cin · taps): the weight gradient multiplies dy by it (transposed), the input gradient computes it as
/// weightᵀ · dy and scatters it back (col2im). <see cref="Pointwise"/>: a 1-tap kernel at stride 1 without padding
/// or input activation, whose im2col matrix is the input itself, so there is no workspace and no chunking.
/// </summary>
internal readonly record struct ConvGradientPlan(bool Pointwise, int Depth, int ChunkColumns, int Stride)
{
    /// <summary>Bound on the im2col chunk (8 MiB), as for the forward convolutions.</summary>
    private const long ChunkBudgetFloats = 1L << 21;

    public long WorkspaceFloats => Pointwise ? 0 : (long)Depth * Stride;

    public static ConvGradientPlan Create(bool pointwise, int depth, int positions)
    {
        if (pointwise) return new(true, depth, positions, 0);
        int chunk = ConvRows.ChunkColumns(depth, positions, ChunkBudgetFloats, 64);
        return new(false, depth, chunk, ConvRows.PaddedStride(chunk));
    }

    public static ConvGradientPlan Of(in Conv2dGeometry g) => Create(
        g.KernelHeight == 1 && g.KernelWidth == 1 && g.Stride == 1 && g.Padding == 0,
        g.InChannels * g.KernelHeight * g.KernelWidth, g.OutHeight * g.OutWidth);

    public static ConvGradientPlan Of(in Conv1dGeometry g, bool inputActivation) => Create(
        g.Kernel == 1 && g.Stride == 1 && g.Padding == 0 && !inputActivation, g.InChannels * g.Kernel, g.OutLength);
}

public sealed partial class CpuBackend :
    IKernel<Conv2dInputGradientOp>, IKernelWorkspace<Conv2dInputGradientOp>,
    IKernel<Conv2dWeightGradientOp>, IKernelWorkspace<Conv2dWeightGradientOp>,
    IKernel<Conv1dInputGradientOp>, IKernelWorkspace<Conv1dInputGradientOp>,
    IKernel<Conv1dWeightGradientOp>, IKernelWorkspace<Conv1dWeightGradientOp>
{
    public long WorkspaceBytes(Conv2dInputGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvGradientPlan.Of(op.Geometry(inputs[0].Shape, inputs[1].Shape)).WorkspaceFloats * sizeof(float);

    public long WorkspaceBytes(Conv2dWeightGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvGradientPlan.Of(op.Geometry(inputs[0].Shape, inputs[1].Shape)).WorkspaceFloats * sizeof(float);

    public long WorkspaceBytes(Conv1dInputGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvGradientPlan.Of(op.Geometry(inputs[0].Shape, inputs[1].Shape), inputActivation: false).WorkspaceFloats * sizeof(float);

    public long WorkspaceBytes(Conv1dWeightGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvGradientPlan.Of(op.Geometry(inputs[0].Shape, inputs[1].Shape), op.Forward.InputLeakySlope.HasValue).WorkspaceFloats
        * sizeof(float);

    /// <summary>
    /// Per image: dx = weightᵀ[Cin, Cout] · dy for a pointwise conv; otherwise, per chunk of output pixels, the im2col
    /// matrix of dx's contributions, weightᵀ[Cin·kh·kw, Cout] · dy[:, chunk], scattered into dx one channel per task
    /// (channel ci's rows only touch plane ci, so tasks never write the same element and the sum order is fixed).
    /// </summary>
    public unsafe void Execute(Conv2dInputGradientOp op, in KernelArgs args)
    {
        Tensor dyTensor = args.Input(0), weightTensor = args.Input(1);
        var g = op.Geometry(dyTensor.Shape, weightTensor.Shape);
        var plan = ConvGradientPlan.Of(g);
        float* dy = dyTensor.Ptr<float>(), weight = weightTensor.Ptr<float>(), dx = args.Output.Ptr<float>();
        float* columns = args.Workspace.Ptr<float>();
        int pixels = g.OutHeight * g.OutWidth, depth = plan.Depth, taps = g.KernelHeight * g.KernelWidth;
        long plane = (long)g.Height * g.Width;
        for (int n = 0; n < g.Batch; n++)
        {
            float* dyN = dy + (long)n * g.OutChannels * pixels;
            float* dxN = dx + n * g.InChannels * plane;
            if (plan.Pointwise)
            {
                CpuGemm.Sgemm(true, false, g.InChannels, pixels, g.OutChannels, 1f, weight, g.InChannels, dyN, pixels, 0f, dxN, pixels);
                continue;
            }
            for (int start = 0; start < pixels; start += plan.ChunkColumns)
            {
                int first = start, count = Math.Min(plan.ChunkColumns, pixels - start);
                CpuGemm.Sgemm(true, false, depth, count, g.OutChannels, 1f, weight, depth, dyN + start, pixels, 0f, columns, plan.Stride);
                CpuParallel.For(g.InChannels, Math.Max(1, 16384 / ((long)taps * count)), (channelStart, channelEnd) =>
                {
                    for (long channel = channelStart; channel < channelEnd; channel++)
                    {
                        if (first == 0) new Span<float>(dxN + channel * plane, (int)plane).Clear();
                        for (long row = channel * taps; row < (channel + 1) * taps; row++)
                            Col2ImRow(g, dxN, (int)row, first, count, columns + row * plan.Stride);
                    }
                });
            }
        }
    }

    /// <summary>
    /// dweight[Cout, Cin·kh·kw] = Σ over images and chunks of dy[:, chunk] · im2col(x)[:, chunk]ᵀ, accumulated by the
    /// GEMM itself (beta 1 after the first chunk) in image and chunk order.
    /// </summary>
    public unsafe void Execute(Conv2dWeightGradientOp op, in KernelArgs args)
    {
        Tensor xTensor = args.Input(0), dyTensor = args.Input(1);
        var g = op.Geometry(xTensor.Shape, dyTensor.Shape);
        var plan = ConvGradientPlan.Of(g);
        float* x = xTensor.Ptr<float>(), dy = dyTensor.Ptr<float>(), dw = args.Output.Ptr<float>();
        float* columns = args.Workspace.Ptr<float>();
        int pixels = g.OutHeight * g.OutWidth, depth = plan.Depth;
        float beta = 0f;
        for (int n = 0; n < g.Batch; n++)
        {
            float* xN = x + (long)n * g.InChannels * g.Height * g.Width;
            float* dyN = dy + (long)n * g.OutChannels * pixels;
            for (int start = 0; start < pixels; start += plan.ChunkColumns, beta = 1f)
            {
                int count = Math.Min(plan.ChunkColumns, pixels - start);
                if (!plan.Pointwise) Im2Col(g, xN, start, count, columns, plan.Stride);
                CpuGemm.Sgemm(false, true, g.OutChannels, depth, count, 1f, dyN + start, pixels,
                    plan.Pointwise ? xN + start : columns, plan.Pointwise ? pixels : plan.Stride, beta, dw, depth);
            }
        }
        if (beta == 0f) args.Output.AsSpan<float>().Clear(); // no images: an empty sum
    }

    /// <summary>The 1-D <see cref="Execute(Conv2dInputGradientOp, in KernelArgs)"/>: col2im rows (channel, tap) are strided row adds.</summary>
    public unsafe void Execute(Conv1dInputGradientOp op, in KernelArgs args)
    {
        Tensor dyTensor = args.Input(0), weightTensor = args.Input(1);
        var g = op.Geometry(dyTensor.Shape, weightTensor.Shape);
        var plan = ConvGradientPlan.Of(g, inputActivation: false);
        float* dy = dyTensor.Ptr<float>(), weight = weightTensor.Ptr<float>(), dx = args.Output.Ptr<float>();
        float* columns = args.Workspace.Ptr<float>();
        int depth = plan.Depth;
        for (int n = 0; n < g.Batch; n++)
        {
            float* dyN = dy + (long)n * g.OutChannels * g.OutLength;
            float* dxN = dx + (long)n * g.InChannels * g.Length;
            if (plan.Pointwise)
            {
                CpuGemm.Sgemm(true, false, g.InChannels, g.Length, g.OutChannels, 1f, weight, g.InChannels, dyN, g.OutLength, 0f,
                    dxN, g.Length);
                continue;
            }
            for (int start = 0; start < g.OutLength; start += plan.ChunkColumns)
            {
                int count = Math.Min(plan.ChunkColumns, g.OutLength - start);
                long origin = (long)start * g.Stride - g.Padding;
                bool firstChunk = start == 0;
                CpuGemm.Sgemm(true, false, depth, count, g.OutChannels, 1f, weight, depth, dyN + start, g.OutLength, 0f, columns, plan.Stride);
                CpuParallel.For(g.InChannels, Math.Max(1, 16384 / ((long)g.Kernel * count)), (channelStart, channelEnd) =>
                {
                    for (long channel = channelStart; channel < channelEnd; channel++)
                    {
                        float* row = dxN + channel * g.Length;
                        if (firstChunk) new Span<float>(row, g.Length).Clear();
                        for (int tap = 0; tap < g.Kernel; tap++)
                            ConvRows.ScatterAdd(columns + (channel * g.Kernel + tap) * plan.Stride, count, row, g.Length,
                                origin + (long)tap * g.Dilation, g.Stride);
                    }
                });
            }
        }
    }

    /// <summary>The 1-D <see cref="Execute(Conv2dWeightGradientOp, in KernelArgs)"/>; the input activation is applied as x is gathered.</summary>
    public unsafe void Execute(Conv1dWeightGradientOp op, in KernelArgs args)
    {
        if (op.Forward.InputLeakySlope is { } slope) Conv1dWeightGradient(op, args, new LeakyReluMap(slope));
        else Conv1dWeightGradient(op, args, new IdentityMap());
    }

    private static unsafe void Conv1dWeightGradient<TMap>(Conv1dWeightGradientOp op, in KernelArgs args, TMap map)
        where TMap : struct, IElementMap
    {
        Tensor xTensor = args.Input(0), dyTensor = args.Input(1);
        var g = op.Geometry(xTensor.Shape, dyTensor.Shape);
        var plan = ConvGradientPlan.Of(g, op.Forward.InputLeakySlope.HasValue);
        float* x = xTensor.Ptr<float>(), dy = dyTensor.Ptr<float>(), dw = args.Output.Ptr<float>();
        float* columns = args.Workspace.Ptr<float>();
        float beta = 0f;
        for (int n = 0; n < g.Batch; n++)
        {
            float* xN = x + (long)n * g.InChannels * g.Length;
            float* dyN = dy + (long)n * g.OutChannels * g.OutLength;
            for (int start = 0; start < g.OutLength; start += plan.ChunkColumns, beta = 1f)
            {
                int count = Math.Min(plan.ChunkColumns, g.OutLength - start);
                if (!plan.Pointwise) Im2Col(g, xN, start, count, columns, plan.Stride, map);
                CpuGemm.Sgemm(false, true, g.OutChannels, plan.Depth, count, 1f, dyN + start, g.OutLength,
                    plan.Pointwise ? xN + start : columns, plan.Pointwise ? g.Length : plan.Stride, beta, dw, plan.Depth);
            }
        }
        if (beta == 0f) args.Output.AsSpan<float>().Clear(); // no images: an empty sum
    }

    /// <summary>Adds row (channel, ky, kx) of an im2col matrix for output pixels [first, first + count) back into the image.</summary>
    private static unsafe void Col2ImRow(in Conv2dGeometry g, float* dx, int row, int first, int count, float* src)
    {
        int taps = g.KernelHeight * g.KernelWidth;
        int channel = row / taps, ky = row % taps / g.KernelWidth, kx = row % g.KernelWidth;
        float* plane = dx + (long)channel * g.Height * g.Width;
        for (int pixel = first, end = first + count; pixel < end;)
        {
            int oy = pixel / g.OutWidth, ox = pixel % g.OutWidth;
            int run = Math.Min(g.OutWidth - ox, end - pixel);
            int iy = oy * g.Stride + ky - g.Padding;
            if ((uint)iy < (uint)g.Height)
                ConvRows.ScatterAdd(src + (pixel - first), run, plane + (long)iy * g.Width, g.Width,
                    (long)ox * g.Stride + kx - g.Padding, g.Stride);
            pixel += run;
        }
    }
}
