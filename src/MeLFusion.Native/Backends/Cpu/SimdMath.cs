using System.Runtime.CompilerServices;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// Transcendental functions for <see cref="IFloatVector{TSelf}"/> at every width, branch-free. Measured against
/// double-precision references over dense grids (see ActivationTests): relative error at most about 2e-7 for
/// <see cref="Exp"/>, <see cref="Log"/> and <see cref="Tanh"/>, 3e-7 for <see cref="NormalPdf"/>, 6e-7 for
/// <see cref="NormalCdf"/>, wherever the true result is a normal float. NaN in gives NaN out. The exponential underflows to 0 below x = -87.68 and overflows to +infinity above
/// x = 88.38 (where the true value is within a factor 1.4 of float.MaxValue).
/// </summary>
internal static class SimdMath
{
    /// <summary>Clamping here keeps n = round(x / ln 2) &gt;= -127, whose 2^n built in the exponent bits is exactly 0.</summary>
    private const float ExpLowerClamp = -88f;
    /// <summary>Clamping here keeps n &lt;= 128, whose 2^n built in the exponent bits is +infinity.</summary>
    private const float ExpUpperClamp = 88.5f;
    private const float Log2E = 1.44269504f;
    /// <summary>ln 2 split so that n * Ln2High is exact for |n| &lt;= 128 (Cody-Waite reduction).</summary>
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    /// <summary>1.5 * 2^23: adding it rounds to an integer and leaves that integer in the low mantissa bits.</summary>
    private const float RoundingShift = 12582912f;

    /// <summary>
    /// e^x: x = n ln2 + r with |r| &lt;= ln2/2, e^r from the Cephes expf polynomial, 2^n built in the exponent bits.
    /// Max relative error 8e-8 in float simulation of the algorithm, under 2e-7 measured. Limits come out of the
    /// exponent bits without selects: n = 128 (x &gt;= 88.38) gives +infinity, n = -127 (x &lt;= -87.68) gives 0, and
    /// between -87.68 and -87.34 results are subnormal.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Exp<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        TV clamped = TV.Clamp(x, TV.Create(ExpLowerClamp), TV.Create(ExpUpperClamp));
        TV shifted = TV.MultiplyAdd(clamped, TV.Create(Log2E), TV.Create(RoundingShift));
        TV n = shifted - TV.Create(RoundingShift);
        TV r = TV.MultiplyAdd(n, TV.Create(-Ln2High), clamped);
        r = TV.MultiplyAdd(n, TV.Create(-Ln2Low), r);

        TV p = TV.MultiplyAdd(TV.Create(1.9875691500e-4f), r, TV.Create(1.3981999507e-3f));
        p = TV.MultiplyAdd(p, r, TV.Create(8.3334519073e-3f));
        p = TV.MultiplyAdd(p, r, TV.Create(4.1665795894e-2f));
        p = TV.MultiplyAdd(p, r, TV.Create(1.6666665459e-1f));
        p = TV.MultiplyAdd(p, r, TV.Create(5.0000001201e-1f));
        TV expR = TV.MultiplyAdd(p, r * r, r) + TV.Create(1f);

        // The integer n sits in the low bits of `shifted`; moving it into the exponent field of 1.0 gives 2^n.
        TV scale = TV.AddBits(TV.ShiftBitsLeft(shifted, 23), TV.Create(1f));
        return expR * scale;
    }

    private const float SmallestNormal = 1.17549435e-38f;
    private const float TwoTo23 = 8388608f;
    private const float SqrtHalf = 0.707106781f;
    /// <summary>The mantissa field of a float (bits 0x007FFFFF), as a float so it can be a lane mask.</summary>
    private static readonly float MantissaBits = BitConverter.Int32BitsToSingle(0x007FFFFF);

    /// <summary>
    /// ln x: x = m 2^e with m in [√½, √2), ln m = ln(1 + f) from the Cephes logf polynomial, e ln 2 added in two
    /// parts (Cody-Waite) so the sum stays exact near x = 1. Subnormals are scaled by 2^23 first. ln 0 = -infinity
    /// (either sign of zero), ln of a negative number or NaN is NaN, ln +infinity = +infinity. Max relative error
    /// under 2e-7 measured (see ActivationTests).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Log<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        TV subnormal = TV.LessThan(x, TV.Create(SmallestNormal));
        TV scaled = TV.Select(subnormal, x * TV.Create(TwoTo23), x);
        // The biased exponent field, shifted down and turned into a float by adding it to 2^23's mantissa bits.
        TV biasedExponent = TV.AddBits(TV.ShiftBitsRight(scaled, 23), TV.Create(TwoTo23)) - TV.Create(TwoTo23);
        TV e = biasedExponent - TV.Select(subnormal, TV.Create(126f + 23f), TV.Create(126f));
        TV m = (scaled & TV.Create(MantissaBits)) ^ TV.Create(0.5f); // x's mantissa under 0.5's exponent: [0.5, 1)
        TV low = TV.LessThan(m, TV.Create(SqrtHalf));
        TV f = TV.Select(low, m + m, m) - TV.Create(1f); // exact: m or 2m lies in [√½, √2)
        e = TV.Select(low, e - TV.Create(1f), e);

        TV z = f * f;
        TV p = TV.MultiplyAdd(TV.Create(7.0376836292e-2f), f, TV.Create(-1.1514610310e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(1.1676998740e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(-1.2420140846e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(1.4249322787e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(-1.6668057665e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(2.0000714765e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(-2.4999993993e-1f));
        p = TV.MultiplyAdd(p, f, TV.Create(3.3333331174e-1f));
        TV y = TV.MultiplyAdd(e, TV.Create(Ln2Low), p * f * z);
        y = TV.MultiplyAdd(z, TV.Create(-0.5f), y);
        TV result = TV.MultiplyAdd(e, TV.Create(Ln2High), f + y);

        result += x - x; // NaN for NaN (and +infinity, set next); +0 otherwise
        result = TV.Select(TV.GreaterThan(x, TV.Create(float.MaxValue)), TV.Create(float.PositiveInfinity), result);
        result = TV.Select(TV.LessThan(x, TV.Create(float.Epsilon)), TV.Create(float.NegativeInfinity), result);
        return TV.Select(TV.LessThan(x, TV.Create(0f)), TV.Create(float.NaN), result);
    }

    /// <summary>
    /// tanh x: the Cephes tanhf odd polynomial for |x| &lt; 0.625 (where 1 - 2/(e^2x + 1) would cancel), that formula
    /// above. Max relative error 1.3e-7 in float simulation, under 2e-7 measured.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Tanh<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        TV abs = TV.Abs(x);
        TV square = x * x;
        TV p = TV.MultiplyAdd(TV.Create(-5.70498872745e-3f), square, TV.Create(2.06390887954e-2f));
        p = TV.MultiplyAdd(p, square, TV.Create(-5.37397155531e-2f));
        p = TV.MultiplyAdd(p, square, TV.Create(1.33314422036e-1f));
        p = TV.MultiplyAdd(p, square, TV.Create(-3.33332819422e-1f));
        TV small = TV.MultiplyAdd(p * square, x, x);

        TV large = TV.Create(1f) - TV.Create(2f) / (Exp(abs + abs) + TV.Create(1f));
        large ^= x & TV.Create(-0f); // restore the sign of x
        return TV.Select(TV.LessThan(abs, TV.Create(0.625f)), small, large);
    }

    /// <summary>x * sigmoid(z) = x / (1 + e^-z); exact limits (0 and x) at both ends, no cancellation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV TimesSigmoid<TV>(TV x, TV z) where TV : unmanaged, IFloatVector<TV> =>
        x / (TV.Create(1f) + Exp(TV.Create(0f) - z));

    /// <summary>
    /// φ(x) = e^(-x²/2) / √(2π), the standard normal density. x²/2 is carried to twice float precision (an exact-product
    /// error term) because e^y turns an absolute error in y into a relative one: at |x| = 12 a plain f32 square would
    /// cost 4e-6.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV NormalPdf<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        // Beyond 14 the density is below float's range; clamping keeps infinities out of the error term.
        TV a = TV.Clamp(TV.Abs(x), TV.Create(0f), TV.Create(14f));
        TV half = a * TV.Create(0.5f);
        TV halfSquare = half * a;
        TV halfSquareError = TV.FusedMultiplyAdd(half, a, TV.Create(0f) - halfSquare);
        TV density = Exp(TV.Create(0f) - halfSquare) * TV.Create(0.398942280f);
        return density - density * halfSquareError;
    }

    /// <summary>
    /// Φ(x), the standard normal CDF, = erfc(-x/√2)/2. The tail Q(|x|) = erfc(|x|/√2)/2 comes from the Numerical
    /// Recipes Chebyshev fit erfc(z) = t·exp(-z² + P(t)), t = 1/(1 + z/2) (fractional error &lt; 1.2e-7), with -x²/2 + P(t)
    /// carried to twice float precision (exact-product and Fast2Sum error terms) because e^y magnifies an absolute error in y
    /// into a relative one. Φ = Q(|x|) for x &lt; 0 and 1 - Q(|x|) otherwise, so both tails keep relative accuracy:
    /// max relative error 5e-7 for x in [-13, 13] in float simulation, under 6e-7 measured; below -13.1 Φ flushes to 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV NormalCdf<TV>(TV x) where TV : unmanaged, IFloatVector<TV>
    {
        // Beyond 14 the tail is far below float's range; clamping keeps infinities out of the error terms.
        TV a = TV.Clamp(TV.Abs(x), TV.Create(0f), TV.Create(14f));
        TV half = a * TV.Create(0.5f);
        TV halfSquare = half * a;
        TV halfSquareError = TV.FusedMultiplyAdd(half, a, TV.Create(0f) - halfSquare);
        TV t = TV.Create(1f) / TV.MultiplyAdd(a, TV.Create(0.35355339f), TV.Create(1f)); // 1 / (1 + z/2), z = a/√2

        TV p = TV.MultiplyAdd(TV.Create(0.17087277f), t, TV.Create(-0.82215223f));
        p = TV.MultiplyAdd(p, t, TV.Create(1.48851587f));
        p = TV.MultiplyAdd(p, t, TV.Create(-1.13520398f));
        p = TV.MultiplyAdd(p, t, TV.Create(0.27886807f));
        p = TV.MultiplyAdd(p, t, TV.Create(-0.18628806f));
        p = TV.MultiplyAdd(p, t, TV.Create(0.09678418f));
        p = TV.MultiplyAdd(p, t, TV.Create(0.37409196f));
        p = TV.MultiplyAdd(p, t, TV.Create(1.00002368f));
        p = TV.MultiplyAdd(p, t, TV.Create(-1.26551223f));

        TV exponent = p - halfSquare;
        TV exponentError = p - (exponent + halfSquare) - halfSquareError;
        TV tail = TV.Create(0.5f) * t * Exp(exponent) * (TV.Create(1f) + exponentError);
        return TV.Select(TV.LessThan(x, TV.Create(0f)), tail, TV.Create(1f) - tail);
    }
}
