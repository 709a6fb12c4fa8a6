using MeLFusion.Native.Backends.Cpu.Convolution;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

internal enum Conv1dAlgorithm
{
    /// <summary>Pointwise, stride 1, no padding, no activation: the input already is the GEMM operand.</summary>
    Gemm,
    /// <summary>An im2col matrix per column chunk (activation applied while gathering), then one GEMM.</summary>
    Im2Col,
    /// <summary>
    /// Stride 1 with very few output channels (HiFi-GAN's conv_post has one): a GEMM with so few rows would spend its
    /// time packing, so each output row is accumulated in registers straight from the input, 4 vectors at a time.
    /// </summary>
    Direct,
}

/// <summary>
/// How the CPU kernel computes one conv1d, and the workspace that takes; a pure function of the geometry. The GEMM
/// paths work on chunks of <see cref="ChunkColumns"/> output positions; their workspace holds the chunk's im2col
/// matrix [Cin·K][stride] (none for <see cref="Conv1dAlgorithm.Gemm"/>) and the GEMM result [Cout][stride], which
/// the fused epilogue adds to bias and residual on its way into the output.
/// </summary>
internal readonly record struct Conv1dPlan(Conv1dAlgorithm Algorithm, Conv1dGeometry Geometry, int ChunkColumns, int Stride,
    long WorkspaceFloats)
{
    /// <summary>Upper bound on the workspace of one chunk (8 MiB): large enough for GEMM efficiency, small enough for L3.</summary>
    private const long ChunkBudgetFloats = 1L << 21;

    /// <summary>Up to this many output channels the direct kernel beats im2col + GEMM.</summary>
    public const int DirectMaxOutChannels = 4;

    public static Conv1dPlan Create(Conv1dGeometry g, bool inputActivation)
    {
        if (g.Stride == 1 && g.OutChannels <= DirectMaxOutChannels)
            return new(Conv1dAlgorithm.Direct, g, 0, 0, 0);
        // A pointwise conv of the raw input multiplies the weight by the input as it is.
        bool pointwise = g.Kernel == 1 && g.Stride == 1 && g.Padding == 0 && !inputActivation;
        long columnRows = pointwise ? 0 : (long)g.InChannels * g.Kernel;
        int chunk = ConvRows.ChunkColumns(columnRows + g.OutChannels, g.OutLength, ChunkBudgetFloats, 64);
        int stride = ConvRows.PaddedStride(chunk);
        return new(pointwise ? Conv1dAlgorithm.Gemm : Conv1dAlgorithm.Im2Col, g, chunk, stride, (columnRows + g.OutChannels) * stride);
    }
}

public sealed partial class CpuBackend : IKernel<Conv1dOp>, IKernelWorkspace<Conv1dOp>
{
    /// <summary>An im2col chunk and its GEMM result (none for the direct kernel).</summary>
    public long WorkspaceBytes(Conv1dOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        Conv1dPlan.Create(op.Geometry(inputs[0].Shape, inputs[1].Shape), op.InputLeakySlope.HasValue).WorkspaceFloats * sizeof(float);

    public unsafe void Execute(Conv1dOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var weight = args.Input(1);
        var plan = Conv1dPlan.Create(op.Geometry(x.Shape, weight.Shape), op.InputLeakySlope.HasValue);
        float* bias = op.HasBias ? args.Input(op.BiasIndex).Ptr<float>() : null;
        float* residual = op.HasResidual ? args.Input(op.ResidualIndex).Ptr<float>() : null;
        float* output = args.Output.Ptr<float>();
        float* workspace = args.Workspace.Ptr<float>();
        if (op.InputLeakySlope is { } slope)
            Conv1d(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output, workspace, new LeakyReluMap(slope));
        else
            Conv1d(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output, workspace, new IdentityMap());
    }

    private static unsafe void Conv1d<TMap>(Conv1dPlan plan, float* x, float* weight, float* bias, float* residual,
        float* output, float* workspace, TMap map) where TMap : struct, IElementMap
    {
        if (plan.Algorithm != Conv1dAlgorithm.Direct)
            Conv1dGemm(plan, x, weight, bias, residual, output, workspace, map);
        else if (Simd512.IsAccelerated)
            Conv1dDirect<Simd512, TMap>(plan.Geometry, x, weight, bias, residual, output, map);
        else if (Simd256.IsAccelerated)
            Conv1dDirect<Simd256, TMap>(plan.Geometry, x, weight, bias, residual, output, map);
        else if (Simd128.IsAccelerated)
            Conv1dDirect<Simd128, TMap>(plan.Geometry, x, weight, bias, residual, output, map);
        else
            Conv1dDirect<SimdScalar, TMap>(plan.Geometry, x, weight, bias, residual, output, map);
    }

    /// <summary>
    /// Stride-1 conv1d computed per (image, output channel, block of 4 vectors of positions): the four accumulators
    /// stay in registers over all input channels and taps. Blocks whose taps reach into the padding take the scalar
    /// path with bounds checks.
    /// </summary>
    private static unsafe void Conv1dDirect<T, TMap>(Conv1dGeometry g, float* x, float* weight, float* bias, float* residual,
        float* output, TMap map) where T : unmanaged, ISimd<T> where TMap : struct, IElementMap
    {
        int block = 4 * T.Count;
        int blocks = (g.OutLength + block - 1) / block;
        // Positions t whose every tap t + k·dilation − padding lies inside the input.
        int interiorStart = Math.Min(g.OutLength, g.Padding);
        int interiorEnd = Math.Clamp(g.Length + g.Padding - (g.Kernel - 1) * g.Dilation, interiorStart, g.OutLength);
        CpuParallel.For((long)g.Batch * g.OutChannels * blocks, 16, (start, end) =>
        {
            for (long item = start; item < end; item++)
            {
                long row = item / blocks; // image · Cout + output channel
                int o = (int)(row % g.OutChannels);
                int t0 = (int)(item % blocks) * block;
                float* xN = x + row / g.OutChannels * g.InChannels * g.Length;
                float* w = weight + (long)o * g.InChannels * g.Kernel;
                float* y = output + row * g.OutLength;
                float* r = residual is null ? null : residual + row * g.OutLength;
                float b = bias is null ? 0f : bias[o];
                if (t0 >= interiorStart && t0 + block <= interiorEnd)
                    DirectBlock<T, TMap>(g, xN, w, b, r, y, t0, map);
                else
                    for (int t = t0; t < Math.Min(t0 + block, g.OutLength); t++)
                        DirectPoint(g, xN, w, b, r, y, t, map);
            }
        });
    }

    private static unsafe void DirectBlock<T, TMap>(in Conv1dGeometry g, float* x, float* w, float b, float* residual, float* y,
        int t0, TMap map) where T : unmanaged, ISimd<T> where TMap : struct, IElementMap
    {
        int n = T.Count;
        var bias = T.Broadcast(b);
        T acc0 = bias, acc1 = bias, acc2 = bias, acc3 = bias;
        if (residual is not null)
        {
            acc0 += T.Load(residual + t0);
            acc1 += T.Load(residual + t0 + n);
            acc2 += T.Load(residual + t0 + 2 * n);
            acc3 += T.Load(residual + t0 + 3 * n);
        }
        int channels = g.InChannels, kernel = g.Kernel, dilation = g.Dilation;
        long length = g.Length;
        float* row = x + t0 - g.Padding;
        for (int i = 0; i < channels; i++, row += length, w += kernel)
        {
            for (int k = 0; k < kernel; k++)
            {
                var wk = T.Broadcast(w[k]);
                float* src = row + k * dilation;
                acc0 = T.MultiplyAdd(wk, map.Apply(T.Load(src)), acc0);
                acc1 = T.MultiplyAdd(wk, map.Apply(T.Load(src + n)), acc1);
                acc2 = T.MultiplyAdd(wk, map.Apply(T.Load(src + 2 * n)), acc2);
                acc3 = T.MultiplyAdd(wk, map.Apply(T.Load(src + 3 * n)), acc3);
            }
        }
        T.Store(acc0, y + t0);
        T.Store(acc1, y + t0 + n);
        T.Store(acc2, y + t0 + 2 * n);
        T.Store(acc3, y + t0 + 3 * n);
    }

    private static unsafe void DirectPoint<TMap>(in Conv1dGeometry g, float* x, float* w, float b, float* residual, float* y,
        int t, TMap map) where TMap : struct, IElementMap
    {
        var sum = SimdScalar.Broadcast(b + (residual is null ? 0f : residual[t]));
        for (int i = 0; i < g.InChannels; i++)
            for (int k = 0; k < g.Kernel; k++)
            {
                int s = t + k * g.Dilation - g.Padding;
                if ((uint)s < (uint)g.Length)
                    sum = SimdScalar.MultiplyAdd(SimdScalar.Broadcast(w[i * g.Kernel + k]), map.Apply(SimdScalar.Load(x + (long)i * g.Length + s)), sum);
            }
        SimdScalar.Store(sum, y + t);
    }

    /// <summary>
    /// Per image and chunk of output positions: Y[:, chunk] = W[Cout, Cin·K] · columns (the weight already has that
    /// layout; the columns are the input itself for a pointwise conv, else its im2col rows (channel, tap) gathered
    /// through <paramref name="map"/>, the fused leaky-ReLU), then the epilogue.
    /// </summary>
    private static unsafe void Conv1dGemm<TMap>(Conv1dPlan plan, float* x, float* weight, float* bias, float* residual,
        float* output, float* workspace, TMap map) where TMap : struct, IElementMap
    {
        var g = plan.Geometry;
        bool pointwise = plan.Algorithm == Conv1dAlgorithm.Gemm;
        int depth = g.InChannels * g.Kernel;
        int chunk = plan.ChunkColumns, stride = plan.Stride;
        float* columns = workspace;
        float* result = workspace + (pointwise ? 0 : (long)depth * stride);
        for (int n = 0; n < g.Batch; n++)
        {
            float* xN = x + (long)n * g.InChannels * g.Length;
            float* y = output + (long)n * g.OutChannels * g.OutLength;
            float* r = residual is null ? null : residual + (long)n * g.OutChannels * g.OutLength;
            for (int start = 0; start < g.OutLength; start += chunk)
            {
                int count = Math.Min(chunk, g.OutLength - start);
                if (!pointwise) Im2Col(g, xN, start, count, columns, stride, map);
                CpuGemm.Sgemm(false, false, g.OutChannels, count, depth, 1f, weight, depth,
                    pointwise ? xN + start : columns, pointwise ? g.Length : stride, 0f, result, stride);
                ConvRows.StoreOutput(result, stride, y + start, g.OutLength, g.OutChannels, count, bias,
                    r is null ? null : r + start, g.OutLength);
            }
        }
    }

    /// <summary>
    /// The im2col matrix [Cin·K][<paramref name="stride"/>] of one image for output positions [first, first + count):
    /// row (channel, tap) holds map(x[channel, t·stride − padding + tap·dilation]), 0 in the padding.
    /// </summary>
    private static unsafe void Im2Col<TMap>(Conv1dGeometry g, float* x, int first, int count, float* columns, int stride, TMap map)
        where TMap : struct, IElementMap
    {
        long origin = (long)first * g.Stride - g.Padding;
        CpuParallel.For((long)g.InChannels * g.Kernel, 8, (rowStart, rowEnd) =>
        {
            for (long row = rowStart; row < rowEnd; row++)
            {
                long channel = row / g.Kernel, tap = row % g.Kernel;
                ConvRows.Gather(x + channel * g.Length, g.Length, origin + tap * g.Dilation, g.Stride, columns + row * stride, count, map);
            }
        });
    }
}
