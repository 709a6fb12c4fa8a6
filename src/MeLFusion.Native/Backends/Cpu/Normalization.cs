using System.Runtime.CompilerServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<GroupNormOp>, IKernel<LayerNormOp>, IKernel<RmsNormOp>,
    IKernel<GroupNormInputGradientOp>, IKernel<GroupNormParamGradientOp>, IKernel<LayerNormInputGradientOp>,
    IKernel<LayerNormParamGradientOp>, IKernel<RmsNormInputGradientOp>, IKernel<RmsNormWeightGradientOp>
{
    public unsafe void Execute(GroupNormOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var shape = NormalizationKernels.GroupShapeOf(x, op.Groups);
        float* weight = op.HasWeight ? args.Input(1).Ptr<float>() : null;
        float* bias = op.HasBias ? args.Input(op.HasWeight ? 2 : 1).Ptr<float>() : null;
        if (op.Silu)
            NormalizationKernels.GroupNorm<SiluOperator>(x.Ptr<float>(), weight, bias, args.Output.Ptr<float>(), shape, op.Epsilon);
        else
            NormalizationKernels.GroupNorm<IdentityOperator>(x.Ptr<float>(), weight, bias, args.Output.Ptr<float>(), shape, op.Epsilon);
    }

    public unsafe void Execute(LayerNormOp op, in KernelArgs args)
    {
        float* weight = op.HasWeight ? args.Input(1).Ptr<float>() : null;
        float* bias = op.HasBias ? args.Input(op.HasWeight ? 2 : 1).Ptr<float>() : null;
        NormalizationKernels.LayerNorm(args.Input(0).Ptr<float>(), weight, bias, args.Output.Ptr<float>(),
            args.Output.ElementCount, args.Output.Shape[-1], op.Epsilon);
    }

    public unsafe void Execute(RmsNormOp op, in KernelArgs args) =>
        NormalizationKernels.RmsNorm(args.Input(0).Ptr<float>(), args.Input(1).Ptr<float>(), args.Output.Ptr<float>(),
            args.Output.ElementCount, args.Output.Shape[-1], op.Epsilon);

    public unsafe void Execute(GroupNormInputGradientOp op, in KernelArgs args)
    {
        var a = GroupNormGradientArgs.Of(op.Forward, args);
        if (op.Forward.Silu)
            NormalizationGradientKernels.GroupNormInputGradient<SiluGradientOperator>(a.X, a.Weight, a.Bias, a.Dy, args.Output.Ptr<float>(), a.Shape, op.Forward.Epsilon);
        else
            NormalizationGradientKernels.GroupNormInputGradient<SecondOperator>(a.X, a.Weight, a.Bias, a.Dy, args.Output.Ptr<float>(), a.Shape, op.Forward.Epsilon);
    }

    public unsafe void Execute(GroupNormParamGradientOp op, in KernelArgs args)
    {
        var a = GroupNormGradientArgs.Of(op.Forward, args);
        float* partials = args.Workspace.Ptr<float>();
        if (op.Forward.Silu)
            NormalizationGradientKernels.GroupNormParameterPartials<SiluGradientOperator>(a.X, a.Weight, a.Bias, a.Dy, partials, a.Shape, op.Forward.Epsilon);
        else
            NormalizationGradientKernels.GroupNormParameterPartials<SecondOperator>(a.X, a.Weight, a.Bias, a.Dy, partials, a.Shape, op.Forward.Epsilon);
        NormalizationGradientKernels.SumChunks(partials, a.Shape.Batch, 2 * a.Shape.Channels, args.Output.Ptr<float>());
    }

    public unsafe void Execute(LayerNormInputGradientOp op, in KernelArgs args)
    {
        float* weight = op.Forward.HasWeight ? args.Input(1).Ptr<float>() : null;
        var x = args.Input(0);
        NormalizationGradientKernels.LayerNormInputGradient(x.Ptr<float>(), weight, args.Input(args.InputCount - 1).Ptr<float>(),
            args.Output.Ptr<float>(), x.ElementCount, x.Shape[-1], op.Forward.Epsilon);
    }

    public unsafe void Execute(LayerNormParamGradientOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        NormalizationGradientKernels.RowParameterGradients(x.Ptr<float>(), args.Input(args.InputCount - 1).Ptr<float>(),
            args.Workspace.Ptr<float>(), args.Output.Ptr<float>(), x.ElementCount, x.Shape[-1], op.Forward.Epsilon, centered: true);
    }

    public unsafe void Execute(RmsNormInputGradientOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        NormalizationGradientKernels.RmsNormInputGradient(x.Ptr<float>(), args.Input(1).Ptr<float>(), args.Input(2).Ptr<float>(),
            args.Output.Ptr<float>(), x.ElementCount, x.Shape[-1], op.Forward.Epsilon);
    }

    public unsafe void Execute(RmsNormWeightGradientOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        NormalizationGradientKernels.RowParameterGradients(x.Ptr<float>(), args.Input(2).Ptr<float>(),
            args.Workspace.Ptr<float>(), args.Output.Ptr<float>(), x.ElementCount, x.Shape[-1], op.Forward.Epsilon, centered: false);
    }

    /// <summary>x, weight and bias (null when absent), dy, and x's group layout, from a group-norm gradient op's inputs.</summary>
    private readonly unsafe struct GroupNormGradientArgs
    {
        public float* X { get; init; }
        public float* Weight { get; init; }
        public float* Bias { get; init; }
        public float* Dy { get; init; }
        public NormalizationKernels.GroupShape Shape { get; init; }

        public static GroupNormGradientArgs Of(GroupNormOp forward, in KernelArgs args) => new()
        {
            X = args.Input(0).Ptr<float>(),
            Weight = forward.HasWeight ? args.Input(1).Ptr<float>() : null,
            Bias = forward.HasBias ? args.Input(forward.HasWeight ? 2 : 1).Ptr<float>() : null,
            Dy = args.Input(args.InputCount - 1).Ptr<float>(),
            Shape = NormalizationKernels.GroupShapeOf(args.Input(0), forward.Groups),
        };
    }
}

internal static unsafe class NormalizationKernels
{
    /// <summary>x [Batch, Channels, Positions] split into Groups groups of consecutive channels.</summary>
    public readonly record struct GroupShape(long Batch, long Channels, long Groups, long Positions)
    {
        public long ChannelsPerGroup => Channels / Groups;
        public long GroupElements => ChannelsPerGroup * Positions;
    }

    /// <summary>The layout of x [N, C, *spatial] in <paramref name="groups"/> groups.</summary>
    public static GroupShape GroupShapeOf(Tensor x, int groups) =>
        new(x.Dim(0), x.Dim(1), groups, x.ElementCount / Math.Max(1L, (long)x.Dim(0) * x.Dim(1)));

    /// <summary>
    /// One (batch, group) per work item, each a contiguous block of channels × positions: a pass for the mean, a pass
    /// for the variance about that mean (two-pass: no cancellation), then one fused pass per channel computing
    /// TActivation((x - mean) * scale + shift). Each statistic is reduced by one thread in a fixed order, so results do not
    /// depend on the thread count.
    /// </summary>
    public static void GroupNorm<TActivation>(float* x, float* weight, float* bias, float* y, GroupShape shape, float epsilon)
        where TActivation : IUnaryOperator
    {
        long channelsPerGroup = shape.ChannelsPerGroup, groupElements = shape.GroupElements;
        CpuParallel.For(shape.Batch * shape.Groups, Math.Max(1, Simd.ParallelBlock / Math.Max(1, groupElements)), (start, end) =>
        {
            for (long item = start; item < end; item++)
            {
                // [N, C, positions] is contiguous, so (n, g) covers elements [item * groupElements, +groupElements).
                float* input = x + item * groupElements;
                float* output = y + item * groupElements;
                var (mean, reciprocalStd) = MeanAndReciprocalStd(input, groupElements, epsilon);
                long firstChannel = item % shape.Groups * channelsPerGroup;
                for (long c = 0; c < channelsPerGroup; c++)
                {
                    long channel = firstChannel + c;
                    float scale = weight == null ? reciprocalStd : reciprocalStd * weight[channel];
                    float shift = bias == null ? 0f : bias[channel];
                    long offset = c * shape.Positions;
                    Simd.Map<NormalizeOperator<TActivation>, ContiguousOperand, BroadcastOperand, BroadcastOperand, BroadcastOperand>(
                        new(input + offset), new(mean), new(scale), new(shift), output + offset, shape.Positions);
                }
            }
        });
    }

    /// <summary>Rows of the last dim in parallel: mean, variance about the mean, normalise, then weight and bias.</summary>
    public static void LayerNorm(float* x, float* weight, float* bias, float* y, long count, long length, float epsilon) =>
        Simd.ParallelRows(count, length, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                float* input = x + row * length;
                float* output = y + row * length;
                var (mean, reciprocalStd) = MeanAndReciprocalStd(input, length, epsilon);
                Simd.Map<NormalizeOperator<IdentityOperator>, ContiguousOperand, BroadcastOperand, BroadcastOperand, BroadcastOperand>(
                    new(input), new(mean), new(reciprocalStd), new(0f), output, length);
                if (weight != null && bias != null)
                    Simd.Map<MultiplyAddOperator, ContiguousOperand, ContiguousOperand, ContiguousOperand>(new(output), new(weight), new(bias), output, length);
                else if (weight != null)
                    Simd.Map<MultiplyOperator, ContiguousOperand, ContiguousOperand>(new(output), new(weight), output, length);
                else if (bias != null)
                    Simd.Map<AddOperator, ContiguousOperand, ContiguousOperand>(new(output), new(bias), output, length);
            }
        });

    /// <summary>Rows of the last dim in parallel: mean of squares, then x * rsqrt(mean + eps) * weight in one pass.</summary>
    public static void RmsNorm(float* x, float* weight, float* y, long count, long length, float epsilon) =>
        Simd.ParallelRows(count, length, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                float* input = x + row * length;
                float reciprocalRms = ReciprocalRms(input, length, epsilon);
                Simd.Map<ProductOperator, ContiguousOperand, BroadcastOperand, ContiguousOperand>(
                    new(input), new(reciprocalRms), new(weight), y + row * length, length);
            }
        });

    /// <summary>Mean and 1/sqrt(biased variance + eps) of n floats, the variance taken about the mean (second pass).</summary>
    public static (float Mean, float ReciprocalStd) MeanAndReciprocalStd(float* x, long n, float epsilon)
    {
        float mean = Simd.Aggregate<FirstOperator, AddOperator>(x, 0f, n) / n;
        float variance = Simd.Aggregate<SquaredDifferenceOperator, AddOperator>(x, mean, n) / n;
        return (mean, 1f / MathF.Sqrt(variance + epsilon));
    }

    /// <summary>1/sqrt(mean(x²) + eps) of n floats, with an IEEE square root and division (as T5).</summary>
    public static float ReciprocalRms(float* x, long n, float epsilon) =>
        1f / MathF.Sqrt(Simd.Aggregate<SquaredDifferenceOperator, AddOperator>(x, 0f, n) / n + epsilon);
}

/// <summary>
/// The normalisation backward passes. Statistics are recomputed from x exactly as the forward kernels compute them.
/// Every sum has a fixed order that depends only on the shapes: per span by <see cref="GradientSimd"/>, across the
/// channels of a group in channel order, across the batch or row chunks in order (in double), so results do not depend
/// on the thread count.
/// </summary>
internal static unsafe class NormalizationGradientKernels
{
    /// <summary>
    /// One (batch item, group) per work item: statistics, then per channel (Σ dz, Σ dz·x̂) weighted by the channel's
    /// weight into the group's sums, then dx channel by channel.
    /// </summary>
    public static void GroupNormInputGradient<TOutputGradient>(float* x, float* weight, float* bias, float* dy, float* dx,
        NormalizationKernels.GroupShape shape, float epsilon) where TOutputGradient : IBinaryOperator
    {
        long channelsPerGroup = shape.ChannelsPerGroup, groupElements = shape.GroupElements;
        CpuParallel.For(shape.Batch * shape.Groups, Math.Max(1, Simd.ParallelBlock / Math.Max(1, groupElements)), (start, end) =>
        {
            for (long item = start; item < end; item++)
            {
                long offset = item * groupElements, firstChannel = item % shape.Groups * channelsPerGroup;
                var (mean, rstd) = NormalizationKernels.MeanAndReciprocalStd(x + offset, groupElements, epsilon);
                double sum = 0, sumTimesNormalized = 0;
                for (long c = 0; c < channelsPerGroup; c++)
                {
                    var span = Span(weight, bias, firstChannel + c, mean, rstd);
                    long at = offset + c * shape.Positions;
                    var (s, sx) = GradientSimd.Sums<TOutputGradient, BroadcastOperand>(x + at, dy + at, new(1f), span, shape.Positions);
                    sum += (double)span.Weight * s;
                    sumTimesNormalized += (double)span.Weight * sx;
                }
                float meanOfG = (float)(sum / groupElements), meanOfGTimesNormalized = (float)(sumTimesNormalized / groupElements);
                for (long c = 0; c < channelsPerGroup; c++)
                {
                    var span = Span(weight, bias, firstChannel + c, mean, rstd);
                    long at = offset + c * shape.Positions;
                    GradientSimd.InputGradient<TOutputGradient, BroadcastOperand>(x + at, dy + at, new(span.Weight), span,
                        meanOfG, meanOfGTimesNormalized, dx + at, shape.Positions);
                }
            }
        });
    }

    /// <summary>
    /// partials [N, 2, C]: for each batch item and channel, Σ dz·x̂ (row 0) and Σ dz (row 1) over the channel's positions.
    /// </summary>
    public static void GroupNormParameterPartials<TOutputGradient>(float* x, float* weight, float* bias, float* dy,
        float* partials, NormalizationKernels.GroupShape shape, float epsilon) where TOutputGradient : IBinaryOperator
    {
        long channelsPerGroup = shape.ChannelsPerGroup, groupElements = shape.GroupElements;
        CpuParallel.For(shape.Batch * shape.Groups, Math.Max(1, Simd.ParallelBlock / Math.Max(1, groupElements)), (start, end) =>
        {
            for (long item = start; item < end; item++)
            {
                long offset = item * groupElements, batch = item / shape.Groups, firstChannel = item % shape.Groups * channelsPerGroup;
                var (mean, rstd) = NormalizationKernels.MeanAndReciprocalStd(x + offset, groupElements, epsilon);
                float* weightPartials = partials + batch * 2 * shape.Channels;
                float* biasPartials = weightPartials + shape.Channels;
                for (long c = 0; c < channelsPerGroup; c++)
                {
                    long at = offset + c * shape.Positions, channel = firstChannel + c;
                    var (s, sx) = GradientSimd.Sums<TOutputGradient, BroadcastOperand>(x + at, dy + at, new(1f),
                        Span(weight, bias, channel, mean, rstd), shape.Positions);
                    weightPartials[channel] = sx;
                    biasPartials[channel] = s;
                }
            }
        });
    }

    /// <summary>Rows in parallel: statistics, (Σ g, Σ g·x̂) with g = dy·weight, then dx in one pass.</summary>
    public static void LayerNormInputGradient(float* x, float* weight, float* dy, float* dx, long count, long length, float epsilon) =>
        Simd.ParallelRows(count, length, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                long at = row * length;
                var (mean, rstd) = NormalizationKernels.MeanAndReciprocalStd(x + at, length, epsilon);
                var span = new NormalizedSpan(mean, rstd);
                if (weight != null) RowInputGradient(x + at, dy + at, new ContiguousOperand(weight), span, dx + at, length, centered: true);
                else RowInputGradient(x + at, dy + at, new BroadcastOperand(1f), span, dx + at, length, centered: true);
            }
        });

    /// <summary>Rows in parallel: r = rsqrt(mean x² + eps), Σ g·x̂ with g = dy·weight and x̂ = x·r, then dx in one pass.</summary>
    public static void RmsNormInputGradient(float* x, float* weight, float* dy, float* dx, long count, long length, float epsilon) =>
        Simd.ParallelRows(count, length, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                long at = row * length;
                var span = new NormalizedSpan(0f, NormalizationKernels.ReciprocalRms(x + at, length, epsilon));
                RowInputGradient(x + at, dy + at, new ContiguousOperand(weight), span, dx + at, length, centered: false);
            }
        });

    /// <summary>
    /// The weight (and, when <paramref name="centered"/>, bias) gradient of layer norm (centered) or RMS norm: chunks of
    /// <see cref="NormalizationGradients.RowsPerChunk"/> rows in parallel, each summing Σ dy·x̂ (and Σ dy) into its own
    /// partial row of <paramref name="partials"/>, then the chunks added in order into <paramref name="output"/>
    /// ([2, D] centered, else [D]).
    /// </summary>
    public static void RowParameterGradients(float* x, float* dy, float* partials, float* output, long count, long length,
        float epsilon, bool centered)
    {
        long rows = length == 0 ? 0 : count / length;
        long chunks = (rows + NormalizationGradients.RowsPerChunk - 1) / NormalizationGradients.RowsPerChunk;
        long width = centered ? 2 * length : length;
        CpuParallel.For(chunks, 1, (start, end) =>
        {
            for (long chunk = start; chunk < end; chunk++)
            {
                float* weightSum = partials + chunk * width;
                float* biasSum = centered ? weightSum + length : null;
                new Span<float>(weightSum, checked((int)width)).Clear();
                long last = Math.Min(rows, (chunk + 1) * NormalizationGradients.RowsPerChunk);
                for (long row = chunk * NormalizationGradients.RowsPerChunk; row < last; row++)
                {
                    float* input = x + row * length;
                    var span = centered
                        ? NormalizedSpanOf(NormalizationKernels.MeanAndReciprocalStd(input, length, epsilon))
                        : new NormalizedSpan(0f, NormalizationKernels.ReciprocalRms(input, length, epsilon));
                    GradientSimd.AccumulateParameterGradients(input, dy + row * length, span, weightSum, biasSum, length);
                }
            }
        });
        SumChunks(partials, chunks, width, output);
    }

    /// <summary>output[j] = Σ_chunk partials[chunk, j] in chunk order (in double); zeros when there are no chunks.</summary>
    public static void SumChunks(float* partials, long chunks, long width, float* output) =>
        CpuParallel.For(width, 4096, (start, end) =>
        {
            for (long j = start; j < end; j++)
            {
                double sum = 0;
                for (long chunk = 0; chunk < chunks; chunk++) sum += partials[chunk * width + j];
                output[j] = (float)sum;
            }
        });

    /// <summary>dx of one row: (Σ g, Σ g·x̂), then dx = rstd·(g - mean(g) - x̂·mean(g·x̂)); RMS norm has no mean(g) term.</summary>
    private static void RowInputGradient<TF>(float* x, float* dy, TF weight, NormalizedSpan span, float* dx, long length, bool centered)
        where TF : struct, IOperand
    {
        var (sum, sumTimesNormalized) = GradientSimd.Sums<SecondOperator, TF>(x, dy, weight, span, length);
        GradientSimd.InputGradient<SecondOperator, TF>(x, dy, weight, span, centered ? sum / length : 0f,
            sumTimesNormalized / length, dx, length);
    }

    private static NormalizedSpan NormalizedSpanOf((float Mean, float ReciprocalStd) statistics) =>
        new(statistics.Mean, statistics.ReciprocalStd);

    /// <summary>The span of channel <paramref name="channel"/> of a group: its weight and bias (1 and 0 when absent).</summary>
    private static NormalizedSpan Span(float* weight, float* bias, long channel, float mean, float rstd) =>
        new(mean, rstd, weight == null ? 1f : weight[channel], bias == null ? 0f : bias[channel]);
}

/// <summary>x * y * z: T5's (x * rsqrt(mean x² + eps)) * weight.</summary>
internal readonly struct ProductOperator : ITernaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y, TV z) where TV : unmanaged, IFloatVector<TV> => x * y * z;
}
