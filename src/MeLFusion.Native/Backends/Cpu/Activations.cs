using System.Runtime.CompilerServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<ActivationOp>, IKernel<GegluOp>, IKernel<ActivationGradientOp>, IKernel<GegluGradientOp>
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
            case Activation.Exp: Simd.ParallelMap<ExpOperator>(x, y, count); break;
            case Activation.Log: Simd.ParallelMap<LogOperator>(x, y, count); break;
            case Activation.Abs: Simd.ParallelMap<AbsOperator>(x, y, count); break;
            case Activation.Sqrt: Simd.ParallelMap<SqrtOperator>(x, y, count); break;
            case Activation.Square: Simd.ParallelMap<SquareOperator>(x, y, count); break;
            case Activation.Sigmoid: Simd.ParallelMap<SigmoidOperator>(x, y, count); break;
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

    public unsafe void Execute(ActivationGradientOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* dy = args.Input(1).Ptr<float>();
        float* dx = args.Output.Ptr<float>();
        long count = args.Output.ElementCount;
        switch (op.Activation)
        {
            case Activation.GeluErf: MapGradient<GeluErfGradientOperator>(x, dy, dx, count); break;
            case Activation.GeluTanh: MapGradient<GeluTanhGradientOperator>(x, dy, dx, count); break;
            case Activation.Silu: MapGradient<SiluGradientOperator>(x, dy, dx, count); break;
            case Activation.Tanh: MapGradient<TanhGradientOperator>(x, dy, dx, count); break;
            case Activation.Exp: MapGradient<ExpGradientOperator>(x, dy, dx, count); break;
            case Activation.Log: MapGradient<DivideOperator>(dy, x, dx, count); break;
            case Activation.Abs: MapGradient<AbsGradientOperator>(x, dy, dx, count); break;
            case Activation.Sqrt: MapGradient<SqrtGradientOperator>(x, dy, dx, count); break;
            case Activation.Square: MapGradient<SquareGradientOperator>(x, dy, dx, count); break;
            case Activation.Sigmoid: MapGradient<SigmoidGradientOperator>(x, dy, dx, count); break;
            case Activation.LeakyRelu:
                float slope = op.NegativeSlope;
                Simd.ParallelFor(count, (start, end) => Simd.Map<LeakyReluGradientOperator, ContiguousOperand, ContiguousOperand, BroadcastOperand>(
                    new(x + start), new(dy + start), new(slope), dx + start, end - start));
                break;
            default:
                throw new NotSupportedException($"cpu: activation {op.Activation} has no gradient kernel");
        }
    }

    /// <summary>Per row: d hidden = dy · gelu(gate) and d gate = dy · hidden · gelu'(gate), each half in one pass.</summary>
    public unsafe void Execute(GegluGradientOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* dy = args.Input(1).Ptr<float>();
        float* dx = args.Output.Ptr<float>();
        long hidden = args.Input(1).Shape[-1];
        Simd.ParallelRows(args.Input(1).ElementCount, hidden, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                float* input = x + row * 2 * hidden;
                float* output = dx + row * 2 * hidden;
                float* gradient = dy + row * hidden;
                Simd.Map<GatedOperator<GeluErfOperator>, ContiguousOperand, ContiguousOperand>(
                    new(gradient), new(input + hidden), output, hidden);
                Simd.Map<GateGradientOperator<GeluErfGradientOperator>, ContiguousOperand, ContiguousOperand, ContiguousOperand>(
                    new(input), new(input + hidden), new(gradient), output + hidden, hidden);
            }
        });
    }

    /// <summary>dx[i] = TGradient(a[i], b[i]) over [0, <paramref name="count"/>) in parallel.</summary>
    private static unsafe void MapGradient<TGradient>(float* a, float* b, float* dx, long count) where TGradient : IBinaryOperator =>
        Simd.ParallelFor(count, (start, end) => Simd.Map<TGradient, ContiguousOperand, ContiguousOperand>(
            new(a + start), new(b + start), dx + start, end - start));
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

internal readonly struct ExpOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.Exp(x);
}

internal readonly struct LogOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.Log(x);
}

internal readonly struct AbsOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.Abs(x);
}

internal readonly struct SqrtOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.Sqrt(x);
}

internal readonly struct SquareOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => x * x;
}

internal readonly struct SigmoidOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.TimesSigmoid(TV.Create(1f), x);
}

// Gradients: binary operators of (x, dy) giving dx = dy · f'(x).

/// <summary>d/dx x Φ(x) = Φ(x) + x φ(x).</summary>
internal readonly struct GeluErfGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV> =>
        dy * TV.MultiplyAdd(x, SimdMath.NormalPdf(x), SimdMath.NormalCdf(x));
}

/// <summary>
/// d/dx x σ(2u) = σ(2u) + x σ(2u) σ(-2u) · d(2u)/dx, with 2u = 2√(2/π)(x + 0.044715 x³) as in the forward form. σ(-2u)
/// is its own exponential, not 1 - σ(2u), so it keeps its digits where σ(2u) is near 1.
/// </summary>
internal readonly struct GeluTanhGradientOperator : IBinaryOperator
{
    private const float TwoSqrtTwoOverPi = 1.5957691216f;
    private const float TwoSqrtTwoOverPiTimesCubic = 1.5957691216f * 0.044715f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV>
    {
        TV square = x * x;
        TV twiceU = x * TV.MultiplyAdd(square, TV.Create(TwoSqrtTwoOverPiTimesCubic), TV.Create(TwoSqrtTwoOverPi));
        TV slope = TV.MultiplyAdd(square, TV.Create(3f * TwoSqrtTwoOverPiTimesCubic), TV.Create(TwoSqrtTwoOverPi));
        TV sigmoid = SimdMath.TimesSigmoid(TV.Create(1f), twiceU);
        TV complement = SimdMath.TimesSigmoid(TV.Create(1f), TV.Create(0f) - twiceU);
        return dy * TV.MultiplyAdd(x * sigmoid, complement * slope, sigmoid);
    }
}

/// <summary>d/dx x σ(x) = σ(x) (1 + x σ(-x)).</summary>
internal readonly struct SiluGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV>
    {
        TV sigmoid = SimdMath.TimesSigmoid(TV.Create(1f), x);
        TV complement = SimdMath.TimesSigmoid(TV.Create(1f), TV.Create(0f) - x);
        return dy * sigmoid * TV.MultiplyAdd(x, complement, TV.Create(1f));
    }
}

/// <summary>
/// d/dx tanh x = 1 - tanh² x = 4e / (1 + e)² with e = e^(-2|x|): no cancellation where tanh x is near ±1.
/// </summary>
internal readonly struct TanhGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV>
    {
        TV a = TV.Abs(x);
        TV e = SimdMath.Exp(TV.Create(0f) - (a + a));
        TV onePlus = TV.Create(1f) + e;
        return dy * (TV.Create(4f) * e / (onePlus * onePlus));
    }
}

/// <summary>d/dx σ(x) = σ(x) σ(-x) = e / (1 + e)² with e = e^-|x|: no cancellation where σ is near 1.</summary>
internal readonly struct SigmoidGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV>
    {
        TV e = SimdMath.Exp(TV.Create(0f) - TV.Abs(x));
        TV onePlus = TV.Create(1f) + e;
        return dy * (e / (onePlus * onePlus));
    }
}

internal readonly struct ExpGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV> => dy * SimdMath.Exp(x);
}

/// <summary>dy · sign(x): dy where x &gt; 0, -dy where x &lt; 0, 0 at ±0 (and, as NaN compares false, at NaN).</summary>
internal readonly struct AbsGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV>
    {
        TV zero = TV.Create(0f);
        return TV.Select(TV.GreaterThan(x, zero), dy, TV.Select(TV.LessThan(x, zero), zero - dy, zero));
    }
}

/// <summary>dy / (2√x), as torch: infinite at 0.</summary>
internal readonly struct SqrtGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV> => dy / (TV.Create(2f) * TV.Sqrt(x));
}

internal readonly struct SquareGradientOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy) where TV : unmanaged, IFloatVector<TV> => dy * (x + x);
}

/// <summary>Leaky ReLU's gradient with the slope as third operand: x &gt; 0 ? dy : slope · dy.</summary>
internal readonly struct LeakyReluGradientOperator : ITernaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV dy, TV slope) where TV : unmanaged, IFloatVector<TV> =>
        TV.Select(TV.GreaterThan(x, TV.Create(0f)), dy, dy * slope);
}

/// <summary>The gate's gradient of hidden · TActivation(gate): dy · hidden · TActivation'(gate).</summary>
internal readonly struct GateGradientOperator<TActivationGradient> : ITernaryOperator where TActivationGradient : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV hidden, TV gate, TV dy) where TV : unmanaged, IFloatVector<TV> =>
        TActivationGradient.Invoke(gate, dy * hidden);
}
