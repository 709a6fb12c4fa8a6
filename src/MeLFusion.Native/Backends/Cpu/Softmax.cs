using System.Runtime.CompilerServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<SoftmaxOp>, IKernel<SoftmaxBackwardOp>
{
    /// <summary>Per row: max, then e^(x - max) stored while summed, then a multiply by 1/sum; rows in parallel.</summary>
    public unsafe void Execute(SoftmaxOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* y = args.Output.Ptr<float>();
        long length = args.Output.Shape[-1];
        Simd.ParallelRows(args.Output.ElementCount, length, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                float* input = x + row * length;
                float* output = y + row * length;
                float max = Simd.Aggregate<FirstOperator, MaxOperator>(input, 0f, length);
                float sum = Simd.Aggregate<ExpOfDifferenceOperator, AddOperator, StoreElements>(input, max, new(output), length);
                Simd.Map<MultiplyOperator, ContiguousOperand, BroadcastOperand>(new(output), new(1f / sum), output, length);
            }
        });
    }

    /// <summary>Per row: Σ dy·y, then dx = y · (dy - Σ) in one pass (dx may be dy); rows in parallel.</summary>
    public unsafe void Execute(SoftmaxBackwardOp op, in KernelArgs args)
    {
        float* y = args.Input(0).Ptr<float>();
        float* dy = args.Input(1).Ptr<float>();
        float* dx = args.Output.Ptr<float>();
        long length = args.Output.Shape[-1];
        Simd.ParallelRows(args.Output.ElementCount, length, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                long at = row * length;
                float dot = GradientSimd.Dot(y + at, dy + at, length);
                Simd.Map<DifferenceTimesOperator, ContiguousOperand, ContiguousOperand, BroadcastOperand>(
                    new(y + at), new(dy + at), new(dot), dx + at, length);
            }
        });
    }
}

/// <summary>x · (y - z): softmax's gradient y · (dy - Σ dy·y).</summary>
internal readonly struct DifferenceTimesOperator : ITernaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y, TV z) where TV : unmanaged, IFloatVector<TV> => x * (y - z);
}

/// <summary>e^(x - y): softmax numerators with y the row maximum, so every exponent is at most 0.</summary>
internal readonly struct ExpOfDifferenceOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => SimdMath.Exp(x - y);
}
