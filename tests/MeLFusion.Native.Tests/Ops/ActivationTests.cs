using System.Runtime.Intrinsics;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ActivationTests
{
    /// <summary>
    /// Expected values are torch in float64. GELU, SiLU and tanh come within 1e-6 relative of them wherever the
    /// result exceeds 1e-10 (SimdMath's functions are tested alone below), leaky ReLU is exact. The absolute floor
    /// covers far negative tails: tanh-GELU's e^(2u) turns the f32 rounding of its argument 2u (|2u| up to ~85 before
    /// underflow) into a relative error of |2u| · 1.2e-7.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("activations");
        foreach (string c in f.Cases.Where(c => !c.StartsWith("geglu", StringComparison.Ordinal)))
        {
            float slope = f.MetaFloat($"{c}.slope");
            Func<GraphBuilder, Value, Value> apply = c[..c.LastIndexOf('_')] switch
            {
                "gelu" => (g, x) => g.Gelu(x),
                "gelu_tanh" => (g, x) => g.Gelu(x, tanhApproximation: true),
                "silu" => (g, x) => g.Silu(x),
                "leaky_relu" => (g, x) => g.LeakyRelu(x, slope),
                "tanh" => (g, x) => g.Tanh(x),
                var other => throw new InvalidOperationException($"fixture case {c}: unknown activation '{other}'"),
            };
            var actual = OpRunner.Run(backend, (g, inputs) => apply(g, inputs[0]), f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 1e-10f, 1e-6f, c);
        }
    }

    /// <summary>
    /// exp, log, abs, sqrt, square and sigmoid against torch in float64, each over its domain (log and sqrt from 1e-44
    /// to 3e38, subnormals included). exp and log come within 2e-7 relative (SimdMath, tested alone below), sigmoid one
    /// division more; abs, sqrt and square are correctly rounded.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationOp), MemberType = typeof(TestBackends))]
    public void UnaryMatchesTorch(string backend)
    {
        using var f = Fixture.Open("unary_activations");
        foreach (string c in f.Cases)
        {
            var activation = c[..c.LastIndexOf('_')] switch
            {
                "exp" => Activation.Exp,
                "log" => Activation.Log,
                "abs" => Activation.Abs,
                "sqrt" => Activation.Sqrt,
                "square" => Activation.Square,
                "sigmoid" => Activation.Sigmoid,
                var other => throw new InvalidOperationException($"fixture case {c}: unknown activation '{other}'"),
            };
            var actual = OpRunner.Run(backend, (g, inputs) => g.Apply(new ActivationOp(activation), inputs[0]), f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 1e-37f, 5e-7f, c);
        }
    }

    /// <summary>The limits: infinities and NaN in, overflow, ln and √ outside their domains, as torch gives them.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationOp), MemberType = typeof(TestBackends))]
    public void UnarySpecialValues(string backend)
    {
        float inf = float.PositiveInfinity, nan = float.NaN;
        float[] Apply(Func<GraphBuilder, Value, Value> op, params float[] x) =>
            OpRunner.Run(backend, (g, i) => op(g, i[0]), new OpRunner.Feed("x", [x.Length], x));
        Assert.Equal([inf, inf, 0f, 0f, 1f, nan], Apply((g, x) => g.Exp(x), 89f, inf, -104f, -inf, 0f, nan));
        Assert.Equal([-inf, -inf, nan, nan, inf, nan, 0f], Apply((g, x) => g.Log(x), 0f, -0f, -1f, -inf, inf, nan, 1f));
        Assert.Equal([0f, nan, inf, nan], Apply((g, x) => g.Sqrt(x), 0f, -1f, inf, nan));
        Assert.Equal([inf, inf, 0f], Apply((g, x) => g.Abs(x), -inf, inf, -0f));
        Assert.Equal([inf, inf, inf], Apply((g, x) => g.Square(x), -inf, 1e20f, inf));
        Assert.Equal([1f, 0f, 1f, 0f, 0.5f], Apply((g, x) => g.Sigmoid(x), inf, -inf, 100f, -200f, 0f));
    }

    /// <summary>hidden * gelu(gate) on the chunk halves; errors as for GELU plus one rounding.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GegluOp), MemberType = typeof(TestBackends))]
    public void GegluMatchesTorch(string backend)
    {
        using var f = Fixture.Open("activations");
        foreach (string c in f.Cases.Where(c => c.StartsWith("geglu", StringComparison.Ordinal)))
        {
            var actual = OpRunner.Run(backend, (g, inputs) => g.Geglu(inputs[0]), f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 1e-10f, 1.5e-6f, c);
        }
    }

    /// <summary>Between other ops (graph inputs and outputs are pinned) both tanh nodes overwrite their inputs.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationOp), MemberType = typeof(TestBackends))]
    public void RunsInPlaceBetweenOps(string backend)
    {
        float[] x = [-2f, -0.5f, 0f, 0.5f, 2f];
        var twice = OpRunner.Run(backend, (g, i) => g.Scale(g.Tanh(g.Tanh(g.Scale(i[0], 1f))), 1f), new OpRunner.Feed("x", [5], x));
        Check.Close(x.Select(v => (float)Math.Tanh(Math.Tanh(v))).ToArray(), twice, 0f, 3e-7f, "tanh(tanh(x))");
    }

    [Fact]
    public void GegluRejectsOddLastDim()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 7);
        var ex = Assert.Throws<ArgumentException>(() => g.Geglu(x));
        Assert.Contains("geglu: x is F32[2, 7]", ex.Message);
    }

    [Fact]
    public void RejectsNonFloatInput()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.BF16, 3);
        var ex = Assert.Throws<ArgumentException>(() => g.Silu(x));
        Assert.Contains("silu: x is BF16[3]", ex.Message);
    }

    // SimdMath accuracy at every vector width (each width runs here whatever the machine's preferred one is).

    [Fact]
    public void ExpRelativeErrorBelow2e7() =>
        AssertRelativeError<ExpFunction>(Math.Exp, Grid(-87.3, 88.3, 400_001), 2e-7);

    [Fact]
    public void TanhRelativeErrorBelow2e7() =>
        AssertRelativeError<TanhFunction>(Math.Tanh, [.. Grid(-10, 10, 400_001), .. Geometric(1e-30, 10, 2001)], 2e-7);

    [Fact]
    public void LogRelativeErrorBelow2e7() =>
        AssertRelativeError<LogFunction>(Math.Log, [.. Grid(0.5, 2, 400_001), .. Geometric(1e-45, 3e38, 400_001)], 2e-7);

    [Fact]
    public void NormalPdfRelativeErrorBelow3e7() =>
        AssertRelativeError<NormalPdfFunction>(x => Math.Exp(-x * x / 2) / Math.Sqrt(2 * Math.PI), Grid(-13, 13, 400_001), 3e-7);

    [Fact]
    public void NormalCdfRelativeErrorBelow6e7() =>
        AssertRelativeError<NormalCdfFunction>(NormalCdf, Grid(-13, 13, 400_001), 6e-7);

    [Fact]
    public void ExpSpecialValues()
    {
        foreach (var result in EvaluateAllWidths<ExpFunction>([float.NegativeInfinity, -1000f, -88.5f, 0f, 88.4f, 1000f, float.PositiveInfinity, float.NaN]))
        {
            Assert.Equal([0f, 0f, 0f, 1f, float.PositiveInfinity, float.PositiveInfinity, float.PositiveInfinity], result[..7]);
            Assert.True(float.IsNaN(result[7]), $"exp(NaN) = {result[7]}");
        }
    }

    private readonly struct ExpFunction : IUnaryOperator
    {
        public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.Exp(x);
    }

    private readonly struct TanhFunction : IUnaryOperator
    {
        public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.Tanh(x);
    }

    private readonly struct LogFunction : IUnaryOperator
    {
        public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.Log(x);
    }

    private readonly struct NormalPdfFunction : IUnaryOperator
    {
        public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.NormalPdf(x);
    }

    private readonly struct NormalCdfFunction : IUnaryOperator
    {
        public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => SimdMath.NormalCdf(x);
    }

    /// <summary>Φ(x) in double (.NET has no erfc).</summary>
    private static double NormalCdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    /// <summary>erfc to ~1e-15 relative: Taylor series of erf for |z| &lt; 2.5, Lentz continued fraction beyond.</summary>
    private static double Erfc(double z)
    {
        if (z < 0) return 2 - Erfc(-z);
        if (z < 2.5)
        {
            double term = z, sum = z;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
            {
                term *= -z * z / n;
                sum += term / (2 * n + 1);
            }
            return 1 - 2 / Math.Sqrt(Math.PI) * sum;
        }
        // erfc(z) = exp(-z²)/√π · 1/(z + 1/2/(z + 1/(z + 3/2/(z + ...)))), evaluated bottom-up.
        double fraction = z;
        for (int k = 200; k >= 1; k--) fraction = z + k / 2.0 / fraction;
        return Math.Exp(-z * z) / Math.Sqrt(Math.PI) / fraction;
    }

    private const double SmallestNormal = 1.17549435e-38;

    private static float[] Grid(double from, double to, int count) =>
        Enumerable.Range(0, count).Select(i => (float)(from + (to - from) * i / (count - 1))).ToArray();

    private static float[] Geometric(double from, double to, int count) =>
        Enumerable.Range(0, count).Select(i => (float)(from * Math.Pow(to / from, i / (double)(count - 1)))).ToArray();

    private static void AssertRelativeError<TOp>(Func<double, double> reference, float[] x, double bound) where TOp : IUnaryOperator
    {
        var results = EvaluateAllWidths<TOp>(x);
        string[] widths = ["scalar", "128", "256", "512"];
        for (int w = 0; w < results.Length; w++)
        {
            double worst = 0;
            float worstAt = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double expected = reference(x[i]);
                if (Math.Abs(expected) < SmallestNormal) continue;
                double error = Math.Abs(results[w][i] - expected) / Math.Abs(expected);
                if (!(error <= worst)) { worst = error; worstAt = x[i]; }
            }
            Assert.True(worst <= bound, $"{typeof(TOp).Name} at width {widths[w]}: relative error {worst:E2} at x = {worstAt:R} exceeds {bound:E1}");
        }
    }

    /// <summary>Runs TOp over <paramref name="x"/> one width at a time: scalar, then 128, 256 and 512-bit vectors.</summary>
    private static unsafe float[][] EvaluateAllWidths<TOp>(float[] x) where TOp : IUnaryOperator
    {
        var results = new float[4][];
        fixed (float* px = x)
        {
            results[0] = Evaluate<FloatScalar, TOp>(px, x.Length);
            results[1] = Evaluate<Float128, TOp>(px, x.Length);
            results[2] = Evaluate<Float256, TOp>(px, x.Length);
            results[3] = Evaluate<Float512, TOp>(px, x.Length);
        }
        return results;
    }

    private static unsafe float[] Evaluate<TV, TOp>(float* x, int n) where TV : unmanaged, IFloatVector<TV> where TOp : IUnaryOperator
    {
        var y = new float[n];
        fixed (float* py = y)
        {
            int i = 0;
            for (; i <= n - TV.Count; i += TV.Count) TV.Store(TOp.Invoke(TV.Load(x + i)), py + i);
            for (; i < n; i++) FloatScalar.Store(TOp.Invoke(FloatScalar.Load(x + i)), py + i);
        }
        return y;
    }
}
