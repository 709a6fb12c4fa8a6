using MeLFusion.Native.Backends.Cpu.Convolution;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

internal enum Conv2dAlgorithm
{
    /// <summary>1x1, stride 1, no padding: the input already is the GEMM operand.</summary>
    Gemm,
    /// <summary>Exact: an im2col matrix per column chunk, then one GEMM.</summary>
    Im2Col,
    /// <summary>3x3 stride 1 with enough input channels: Winograd F(4x4, 3x3), 4x fewer multiplications.</summary>
    Winograd,
}

/// <summary>
/// How the CPU kernel computes one conv2d, and the workspace that takes; a pure function of the geometry. The GEMM
/// paths work on chunks of <see cref="ChunkColumns"/> output pixels; their workspace holds the chunk's im2col matrix
/// [Cin·kh·kw][stride] (none for <see cref="Conv2dAlgorithm.Gemm"/>) and the GEMM result [Cout][stride], which the
/// fused epilogue adds to bias and residual on its way into the output.
/// </summary>
internal readonly record struct Conv2dPlan(Conv2dAlgorithm Algorithm, Conv2dGeometry Geometry, int ChunkColumns, int Stride,
    long WorkspaceFloats)
{
    /// <summary>Upper bound on the workspace of one chunk (8 MiB): large enough for GEMM efficiency, small enough for L3.</summary>
    private const long ChunkBudgetFloats = 1L << 21;

    /// <summary>
    /// Below this many input channels the exact im2col path is faster (measured: 8 -> 320 channels takes twice as
    /// long with Winograd, whose output transform then dominates). Few output channels do not matter: 320 -> 8 is
    /// 2.5x faster with Winograd, as its im2col matrix would be 9x the input.
    /// </summary>
    public const int WinogradMinInputChannels = 16;

    public static Conv2dPlan Create(Conv2dGeometry g)
    {
        bool pointwise = g.KernelHeight == 1 && g.KernelWidth == 1 && g.Stride == 1 && g.Padding == 0;
        if (g.KernelHeight == 3 && g.KernelWidth == 3 && g.Stride == 1 && g.InChannels >= WinogradMinInputChannels)
        {
            var w = new WinogradLayout(g);
            return new(Conv2dAlgorithm.Winograd, g, w.ChunkTiles, w.TileStride, w.WorkspaceFloats);
        }
        long columnRows = pointwise ? 0 : (long)g.InChannels * g.KernelHeight * g.KernelWidth;
        int chunk = ConvRows.ChunkColumns(columnRows + g.OutChannels, (long)g.OutHeight * g.OutWidth, ChunkBudgetFloats, 64);
        int stride = ConvRows.PaddedStride(chunk);
        return new(pointwise ? Conv2dAlgorithm.Gemm : Conv2dAlgorithm.Im2Col, g, chunk, stride,
            (columnRows + g.OutChannels) * stride);
    }
}

public sealed partial class CpuBackend : IKernel<Conv2dOp>, IKernelWorkspace<Conv2dOp>
{
    /// <summary>Winograd transforms, or an im2col chunk and its GEMM result.</summary>
    public long WorkspaceBytes(Conv2dOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        Conv2dPlan.Create(op.Geometry(inputs[0].Shape, inputs[1].Shape)).WorkspaceFloats * sizeof(float);

    public unsafe void Execute(Conv2dOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var weight = args.Input(1);
        var plan = Conv2dPlan.Create(op.Geometry(x.Shape, weight.Shape));
        float* bias = op.HasBias ? args.Input(op.BiasIndex).Ptr<float>() : null;
        float* residual = op.HasResidual ? args.Input(op.ResidualIndex).Ptr<float>() : null;
        float* output = args.Output.Ptr<float>();
        float* workspace = args.Workspace.Ptr<float>();
        if (plan.Algorithm == Conv2dAlgorithm.Winograd)
            Winograd4x3.Run(new WinogradLayout(plan.Geometry), x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output, workspace);
        else
            Conv2dGemm(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output, workspace);
    }

    /// <summary>
    /// Per image and chunk of output pixels: Y[:, chunk] = W[Cout, Cin·kh·kw] · columns (the weight already has that
    /// layout; the columns are the input itself for a pointwise conv, else its im2col rows), then the epilogue.
    /// </summary>
    private static unsafe void Conv2dGemm(Conv2dPlan plan, float* x, float* weight, float* bias, float* residual,
        float* output, float* workspace)
    {
        var g = plan.Geometry;
        bool pointwise = plan.Algorithm == Conv2dAlgorithm.Gemm;
        int depth = g.InChannels * g.KernelHeight * g.KernelWidth;
        int pixels = g.OutHeight * g.OutWidth;
        int chunk = plan.ChunkColumns, stride = plan.Stride;
        float* columns = workspace;
        float* result = workspace + (pointwise ? 0 : (long)depth * stride);
        for (int n = 0; n < g.Batch; n++)
        {
            float* xN = x + (long)n * g.InChannels * g.Height * g.Width;
            float* y = output + (long)n * g.OutChannels * pixels;
            float* r = residual is null ? null : residual + (long)n * g.OutChannels * pixels;
            for (int start = 0; start < pixels; start += chunk)
            {
                int count = Math.Min(chunk, pixels - start);
                if (!pointwise) Im2Col(g, xN, start, count, columns, stride);
                CpuGemm.Sgemm(false, false, g.OutChannels, count, depth, 1f, weight, depth,
                    pointwise ? xN + start : columns, pointwise ? pixels : stride, 0f, result, stride);
                ConvRows.StoreOutput(result, stride, y + start, pixels, g.OutChannels, count, bias,
                    r is null ? null : r + start, pixels);
            }
        }
    }

    /// <summary>The im2col matrix [Cin·kh·kw][<paramref name="stride"/>] of one image for output pixels [first, first + count).</summary>
    private static unsafe void Im2Col(Conv2dGeometry g, float* x, int first, int count, float* columns, int stride)
    {
        int depth = g.InChannels * g.KernelHeight * g.KernelWidth;
        CpuParallel.For(depth, 8, (rowStart, rowEnd) =>
        {
            for (long row = rowStart; row < rowEnd; row++)
                Im2ColRow(g, x, (int)row, first, count, columns + row * stride);
        });
    }

    /// <summary>Row (channel, ky, kx) of the im2col matrix for output pixels [first, first + count).</summary>
    private static unsafe void Im2ColRow(in Conv2dGeometry g, float* x, int row, int first, int count, float* dst)
    {
        int kernelArea = g.KernelHeight * g.KernelWidth;
        int channel = row / kernelArea;
        int ky = row % kernelArea / g.KernelWidth;
        int kx = row % g.KernelWidth;
        float* plane = x + (long)channel * g.Height * g.Width;
        // Output columns whose input column ox·stride + kx − padding lies inside the image; the same for every output row.
        int validStart = Math.Min(g.OutWidth, (Math.Max(0, g.Padding - kx) + g.Stride - 1) / g.Stride);
        int validEnd = Math.Clamp((g.Width + g.Padding - kx + g.Stride - 1) / g.Stride, validStart, g.OutWidth);
        int pixel = first, end = first + count;
        while (pixel < end)
        {
            int oy = pixel / g.OutWidth, ox = pixel % g.OutWidth;
            int runEnd = Math.Min(g.OutWidth, ox + end - pixel);
            float* d = dst + (pixel - first) - ox; // indexed by output column
            int iy = oy * g.Stride + ky - g.Padding;
            int copyStart = Math.Clamp(validStart, ox, runEnd), copyEnd = Math.Clamp(validEnd, copyStart, runEnd);
            if ((uint)iy >= (uint)g.Height) copyStart = copyEnd = runEnd;
            for (int c = ox; c < copyStart; c++) d[c] = 0f;
            float* src = plane + (long)iy * g.Width + kx - g.Padding;
            if (g.Stride == 1)
                new ReadOnlySpan<float>(src + copyStart, copyEnd - copyStart).CopyTo(new Span<float>(d + copyStart, copyEnd - copyStart));
            else
                for (int c = copyStart; c < copyEnd; c++) d[c] = src[(long)c * g.Stride];
            for (int c = copyEnd; c < runEnd; c++) d[c] = 0f;
            pixel += runEnd - ox;
        }
    }
}
