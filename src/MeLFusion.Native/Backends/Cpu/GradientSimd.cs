using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// Scalars of one normalised span (a row, or one channel of a group): x̂ = (x - Mean) · Rstd, and z = x̂ · Weight + Bias
/// the input of a fused activation (group norm's SiLU).
/// </summary>
internal readonly record struct NormalizedSpan(float Mean, float Rstd, float Weight = 1f, float Bias = 0f);

/// <summary>
/// SIMD drivers of the backward passes (dot products, normalisation gradients), in the style of <see cref="Simd"/>:
/// each loop runs at 512, 256, 128 bits, then one float at a time on what the wider one left, with the same operator
/// code at every width. Sums keep one vector accumulator per width and add the widths in that order, so a result depends
/// only on the machine's vector width, never on threads.
/// </summary>
internal static unsafe class GradientSimd
{
    /// <summary>As <see cref="Simd"/>'s loops: fully optimised at once and never inlined (each loop its own JIT root).</summary>
    private const MethodImplOptions KernelLoop = MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining;

    /// <summary>Σ a[i]·b[i].</summary>
    public static float Dot(float* a, float* b, long n)
    {
        long i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated) i = DotBlocks<Float512>(a, b, i, n, ref sum);
        if (Vector256.IsHardwareAccelerated) i = DotBlocks<Float256>(a, b, i, n, ref sum);
        if (Vector128.IsHardwareAccelerated) i = DotBlocks<Float128>(a, b, i, n, ref sum);
        DotBlocks<FloatScalar>(a, b, i, n, ref sum);
        return sum;
    }

    /// <summary>
    /// (Σ dz·f, Σ dz·f·x̂) over a normalised span, dz = TOutputGradient(z, dy) the gradient at the affine output z
    /// (dy itself, or through a fused activation) and f the <paramref name="factor"/> operand (the weight, or 1).
    /// </summary>
    public static (float Sum, float SumTimesNormalized) Sums<TOutputGradient, TF>(float* x, float* dy, TF factor, NormalizedSpan span, long n)
        where TOutputGradient : IBinaryOperator where TF : struct, IOperand
    {
        long i = 0;
        float sum = 0f, sumTimesNormalized = 0f;
        if (Vector512.IsHardwareAccelerated) i = SumBlocks<Float512, TOutputGradient, TF>(x, dy, factor, span, i, n, ref sum, ref sumTimesNormalized);
        if (Vector256.IsHardwareAccelerated) i = SumBlocks<Float256, TOutputGradient, TF>(x, dy, factor, span, i, n, ref sum, ref sumTimesNormalized);
        if (Vector128.IsHardwareAccelerated) i = SumBlocks<Float128, TOutputGradient, TF>(x, dy, factor, span, i, n, ref sum, ref sumTimesNormalized);
        SumBlocks<FloatScalar, TOutputGradient, TF>(x, dy, factor, span, i, n, ref sum, ref sumTimesNormalized);
        return (sum, sumTimesNormalized);
    }

    /// <summary>
    /// dx = Rstd · (g - <paramref name="meanOfG"/> - x̂ · <paramref name="meanOfGTimesNormalized"/>), g = dz·f as in
    /// <see cref="Sums{TOutputGradient, TF}"/>. <paramref name="dx"/> may be <paramref name="dy"/>.
    /// </summary>
    public static void InputGradient<TOutputGradient, TF>(float* x, float* dy, TF factor, NormalizedSpan span,
        float meanOfG, float meanOfGTimesNormalized, float* dx, long n)
        where TOutputGradient : IBinaryOperator where TF : struct, IOperand
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated) i = InputGradientBlocks<Float512, TOutputGradient, TF>(x, dy, factor, span, meanOfG, meanOfGTimesNormalized, dx, i, n);
        if (Vector256.IsHardwareAccelerated) i = InputGradientBlocks<Float256, TOutputGradient, TF>(x, dy, factor, span, meanOfG, meanOfGTimesNormalized, dx, i, n);
        if (Vector128.IsHardwareAccelerated) i = InputGradientBlocks<Float128, TOutputGradient, TF>(x, dy, factor, span, meanOfG, meanOfGTimesNormalized, dx, i, n);
        InputGradientBlocks<FloatScalar, TOutputGradient, TF>(x, dy, factor, span, meanOfG, meanOfGTimesNormalized, dx, i, n);
    }

    /// <summary>
    /// One row's terms of the row-normalisation parameter gradients: weightSum[i] += dy[i]·x̂[i] and, unless
    /// <paramref name="biasSum"/> is null, biasSum[i] += dy[i].
    /// </summary>
    public static void AccumulateParameterGradients(float* x, float* dy, NormalizedSpan span, float* weightSum, float* biasSum, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated) i = AccumulateBlocks<Float512>(x, dy, span, weightSum, biasSum, i, n);
        if (Vector256.IsHardwareAccelerated) i = AccumulateBlocks<Float256>(x, dy, span, weightSum, biasSum, i, n);
        if (Vector128.IsHardwareAccelerated) i = AccumulateBlocks<Float128>(x, dy, span, weightSum, biasSum, i, n);
        AccumulateBlocks<FloatScalar>(x, dy, span, weightSum, biasSum, i, n);
    }

    [MethodImpl(KernelLoop)]
    private static long DotBlocks<TV>(float* a, float* b, long i, long n, ref float sum) where TV : unmanaged, IFloatVector<TV>
    {
        TV accumulator = TV.Create(0f);
        for (; i <= n - TV.Count; i += TV.Count)
            accumulator = TV.MultiplyAdd(TV.Load(a + i), TV.Load(b + i), accumulator);
        sum += TV.SumAcross(accumulator);
        return i;
    }

    [MethodImpl(KernelLoop)]
    private static long SumBlocks<TV, TOutputGradient, TF>(float* x, float* dy, TF factor, NormalizedSpan span, long i, long n,
        ref float sum, ref float sumTimesNormalized)
        where TV : unmanaged, IFloatVector<TV> where TOutputGradient : IBinaryOperator where TF : struct, IOperand
    {
        TV mean = TV.Create(span.Mean), rstd = TV.Create(span.Rstd), weight = TV.Create(span.Weight), bias = TV.Create(span.Bias);
        TV sums = TV.Create(0f), products = sums;
        for (; i <= n - TV.Count; i += TV.Count)
        {
            TV normalized = (TV.Load(x + i) - mean) * rstd;
            TV g = TOutputGradient.Invoke(TV.MultiplyAdd(normalized, weight, bias), TV.Load(dy + i)) * factor.Load<TV>(i);
            sums += g;
            products = TV.MultiplyAdd(g, normalized, products);
        }
        sum += TV.SumAcross(sums);
        sumTimesNormalized += TV.SumAcross(products);
        return i;
    }

    [MethodImpl(KernelLoop)]
    private static long InputGradientBlocks<TV, TOutputGradient, TF>(float* x, float* dy, TF factor, NormalizedSpan span,
        float meanOfG, float meanOfGTimesNormalized, float* dx, long i, long n)
        where TV : unmanaged, IFloatVector<TV> where TOutputGradient : IBinaryOperator where TF : struct, IOperand
    {
        TV mean = TV.Create(span.Mean), rstd = TV.Create(span.Rstd), weight = TV.Create(span.Weight), bias = TV.Create(span.Bias);
        TV c1 = TV.Create(meanOfG), c2 = TV.Create(meanOfGTimesNormalized);
        for (; i <= n - TV.Count; i += TV.Count)
        {
            TV normalized = (TV.Load(x + i) - mean) * rstd;
            TV g = TOutputGradient.Invoke(TV.MultiplyAdd(normalized, weight, bias), TV.Load(dy + i)) * factor.Load<TV>(i);
            TV.Store(rstd * (g - c1 - normalized * c2), dx + i);
        }
        return i;
    }

    [MethodImpl(KernelLoop)]
    private static long AccumulateBlocks<TV>(float* x, float* dy, NormalizedSpan span, float* weightSum, float* biasSum, long i, long n)
        where TV : unmanaged, IFloatVector<TV>
    {
        TV mean = TV.Create(span.Mean), rstd = TV.Create(span.Rstd);
        for (; i <= n - TV.Count; i += TV.Count)
        {
            TV gradient = TV.Load(dy + i);
            TV.Store(TV.MultiplyAdd(gradient, (TV.Load(x + i) - mean) * rstd, TV.Load(weightSum + i)), weightSum + i);
            if (biasSum != null) TV.Store(TV.Load(biasSum + i) + gradient, biasSum + i);
        }
        return i;
    }
}

/// <summary>y, ignoring x: the gradient passed through unchanged where no activation is fused.</summary>
internal readonly struct SecondOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => y;
}
