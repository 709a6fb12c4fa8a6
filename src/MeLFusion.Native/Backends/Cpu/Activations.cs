using System.Runtime.CompilerServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<ActivationOp>, IKernel<GegluOp>
{
    public unsafe void Execute(ActivationOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* y = args.Output.Ptr<float>();
        long count = args.Output.ElementCount;
        switch (op.Activation)
        {
            case Activation.GeluErf: Simd.ParallelMap<GeluErfOperator>(x, y, count); break;
            case Activation.GeluTanh: Simd.ParallelMap<GeluTanhOperator>(x, y, count); break;
            case Activation.Silu: Simd.ParallelMap<SiluOperator>(x, y, count); break;
            case Activation.Tanh: Simd.ParallelMap<TanhOperator>(x, y, count); break;
            case Activation.LeakyRelu:
                float slope = op.NegativeSlope;
                Simd.ParallelFor(count, (start, end) => Simd.Map<LeakyReluOperator, ContiguousOperand, BroadcastOperand>(
                    new(x + start), new(slope), y + start, end - start));
                break;
            default:
                throw new NotSupportedException($"cpu: activation {op.Activation} has no kernel");
        }
    }

    public unsafe void Execute(GegluOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* y = args.Output.Ptr<float>();
        long hidden = args.Output.Shape[-1];
        Simd.ParallelRows(args.Output.ElementCount, hidden, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                float* input = x + row * 2 * hidden;
                Simd.Map<GatedOperator<GeluErfOperator>, ContiguousOperand, ContiguousOperand>(
                    new(input), new(input + hidden), y + row * hidden, hidden);
            }
        });
    }
}

/// <summary>GELU with the exact normal CDF: x Φ(x).</summary>
internal readonly struct GeluErfOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => x * SimdMath.NormalCdf(x);
}

/// <summary>
/// tanh-approximated GELU, 0.5 x (1 + tanh(u)) with u = √(2/π)(x + 0.044715 x³), evaluated as x * sigmoid(2u): the
/// same function without the cancellation of 1 + tanh(u) for negative x.
/// </summary>
internal readonly struct GeluTanhOperator : IUnaryOperator
{
    private const float TwoSqrtTwoOverPi = 1.5957691216f;
    private const float TwoSqrtTwoOverPiTimesCubic = 1.5957691216f * 0.044715f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        TV twiceU = x * TV.MultiplyAdd(x * x, TV.Create(TwoSqrtTwoOverPiTimesCubic), TV.Create(TwoSqrtTwoOverPi));
        return SimdMath.TimesSigmoid(x, twiceU);
    }
}

/// <summary>SiLU (swish): x * sigmoid(x).</summary>
internal readonly struct SiluOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.TimesSigmoid(x, x);
}

internal readonly struct TanhOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.Tanh(x);
}

/// <summary>Leaky ReLU with the slope as second operand: x &gt; 0 ? x : slope * x.</summary>
internal readonly struct LeakyReluOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV slope) where TV : unmanaged, IFloatVector<TV> =>
        TV.Select(TV.GreaterThan(x, TV.Create(0f)), x, x * slope);
}

/// <summary>Gated activation: hidden * TActivation(gate).</summary>
internal readonly struct GatedOperator<TActivation> : IBinaryOperator where TActivation : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV hidden, TV gate) where TV : unmanaged, IFloatVector<TV> => hidden * TActivation.Invoke(gate);
}
