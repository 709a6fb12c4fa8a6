using System.Runtime.CompilerServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<GroupNormOp>, IKernel<LayerNormOp>, IKernel<RmsNormOp>
{
    public unsafe void Execute(GroupNormOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var shape = new NormalizationKernels.GroupShape(x.Dim(0), x.Dim(1), op.Groups,
            x.ElementCount / Math.Max(1L, (long)x.Dim(0) * x.Dim(1)));
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
}

internal static unsafe class NormalizationKernels
{
    /// <summary>x [Batch, Channels, Positions] split into Groups groups of consecutive channels.</summary>
    public readonly record struct GroupShape(long Batch, long Channels, long Groups, long Positions);

    /// <summary>
    /// One (batch, group) per work item, each a contiguous block of channels × positions: a pass for the mean, a pass
    /// for the variance about that mean (two-pass: no cancellation), then one fused pass per channel computing
    /// TActivation((x - mean) * scale + shift). Each statistic is reduced by one thread in a fixed order, so results do not
    /// depend on the thread count.
    /// </summary>
    public static void GroupNorm<TActivation>(float* x, float* weight, float* bias, float* y, GroupShape shape, float epsilon)
        where TActivation : IUnaryOperator
    {
        long channelsPerGroup = shape.Channels / shape.Groups;
        long groupElements = channelsPerGroup * shape.Positions;
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
                float meanSquare = Simd.Aggregate<SquaredDifferenceOperator, AddOperator>(input, 0f, length) / length;
                float reciprocalRms = 1f / MathF.Sqrt(meanSquare + epsilon);
                Simd.Map<ProductOperator, ContiguousOperand, BroadcastOperand, ContiguousOperand>(
                    new(input), new(reciprocalRms), new(weight), y + row * length, length);
            }
        });

    /// <summary>Mean and 1/sqrt(biased variance + eps) of n floats, the variance taken about the mean (second pass).</summary>
    private static (float Mean, float ReciprocalStd) MeanAndReciprocalStd(float* x, long n, float epsilon)
    {
        float mean = Simd.Aggregate<FirstOperator, AddOperator>(x, 0f, n) / n;
        float variance = Simd.Aggregate<SquaredDifferenceOperator, AddOperator>(x, mean, n) / n;
        return (mean, 1f / MathF.Sqrt(variance + epsilon));
    }
}

/// <summary>x * y * z: T5's (x * rsqrt(mean x² + eps)) * weight.</summary>
internal readonly struct ProductOperator : ITernaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y, TV z) where TV : unmanaged, IFloatVector<TV> => x * y * z;
}
