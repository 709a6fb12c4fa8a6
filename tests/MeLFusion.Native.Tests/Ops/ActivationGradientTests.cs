using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

public class ActivationGradientTests
{
    private static readonly Dictionary<string, Activation> ByName =
        Enum.GetValues<Activation>().ToDictionary(a => new ActivationOp(a).Name);

    /// <summary>
    /// Expected dx is torch autograd in float64 on each function's domain (GELU through its tail-exact form). Every
    /// derivative is evaluated in a form without cancellation (tanh' and σ' from e^-|x|, GELU's density with its
    /// exponent carried to twice precision), so dx comes within a few 1e-6 relative of the reference wherever it exceeds
    /// the absolute floor.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationGradientOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("activations_grad");
        foreach (string c in f.Cases)
        {
            var activation = ByName[c[..c.LastIndexOf('_')]];
            float slope = f.MetaFloat($"{c}.slope");
            var grads = TorchBackward.Run(backend, (g, i) => g.Apply(new ActivationOp(activation, slope), i[0]),
                [f.Feed($"{c}.x", "x")], f.F32($"{c}.dy"), "x");
            Check.Close(f.F32($"{c}.dx"), grads["x"], 1e-10f, 4e-6f, $"{backend} {c}: dx");
        }
    }

    /// <summary>
    /// d hidden = dy · gelu(gate), d gate = dy · hidden · gelu'(gate); errors as for GELU and its gradient, plus an
    /// absolute floor near gelu'(gate) = 0 (gate ≈ -0.75), where Φ + x φ cancels: the error is then relative to
    /// |dy · hidden| (up to ~30 here), not to the result.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GegluGradientOp), MemberType = typeof(TestBackends))]
    public void GegluMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("geglu_grad");
        foreach (string c in f.Cases)
        {
            var grads = TorchBackward.Run(backend, (g, i) => g.Geglu(i[0]), [f.Feed($"{c}.x", "x")], f.F32($"{c}.dy"), "x");
            Check.Close(f.F32($"{c}.dx"), grads["x"], 2e-6f, 4e-6f, $"{backend} geglu {c}: dx");
        }
    }

    /// <summary>Every activation against finite differences, on inputs inside its domain and away from kinks.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationGradientOp), MemberType = typeof(TestBackends))]
    public void PassesGradCheck(string backend)
    {
        var random = new Random(41);
        foreach (var activation in Enum.GetValues<Activation>())
        {
            // Magnitudes in [0.2, 2.2): clear of the kinks of abs and leaky ReLU at 0 by far more than the step.
            var magnitudes = Enumerable.Range(0, 12).Select(_ => 0.2f + 2f * (float)random.NextDouble()).ToArray();
            bool positive = activation is Activation.Log or Activation.Sqrt;
            var x = magnitudes.Select((m, i) => positive || i % 2 == 0 ? m : -m).ToArray();
            GradCheck.Run(backend, (g, i) => g.Apply(new ActivationOp(activation, 0.1f), i[0]), [new Feed("x", [3, 4], x)]);
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GegluGradientOp), MemberType = typeof(TestBackends))]
    public void GegluPassesGradCheck(string backend)
    {
        var random = new Random(42);
        GradCheck.Run(backend, (g, i) => g.Geglu(i[0]), [Feed.Uniform(random, 2f, "x", 3, 10)]);
    }

    /// <summary>Where torch's gradient is infinite or exactly zero: √ and ln at 0, |x| at ±0 (sign 0), e^x past f32's range.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ActivationGradientOp), MemberType = typeof(TestBackends))]
    public void SpecialGradients(string backend)
    {
        float[] Gradient(Activation activation, float[] x, float[] dy) =>
            TorchBackward.Run(backend, (g, i) => g.Apply(new ActivationOp(activation), i[0]), [new Feed("x", [x.Length], x)], dy, "x")["x"];
        Assert.Equal([float.PositiveInfinity, float.NegativeInfinity], Gradient(Activation.Sqrt, [0f, 0f], [1f, -2f]));
        Assert.Equal([float.PositiveInfinity, float.NegativeInfinity], Gradient(Activation.Log, [0f, 0f], [1f, -2f]));
        Assert.Equal([0f, 0f, 3f, -3f], Gradient(Activation.Abs, [0f, -0f, 2f, -2f], [3f, 3f, 3f, 3f]));
        Assert.Equal([float.PositiveInfinity, 0f], Gradient(Activation.Exp, [100f, -200f], [1f, 1f]));
        Assert.Equal([0f, 0f], Gradient(Activation.Sigmoid, [200f, -200f], [1f, 1f]));
        Assert.Equal([0f, 0f], Gradient(Activation.Tanh, [200f, -200f], [1f, 1f]));
    }

    [Fact]
    public void RejectsOutputGradientOfWrongShape()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 3);
        var dy = g.Input("dy", DType.F32, 3, 2);
        var ex = Assert.Throws<ArgumentException>(() => g.Apply(new ActivationGradientOp(Activation.Sigmoid), x, dy));
        Assert.Contains("sigmoid_grad: dy is F32[3, 2] but x is F32[2, 3]", ex.Message);
    }

    [Fact]
    public void GegluGradientRejectsOutputGradientOfWrongShape()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 8);
        var dy = g.Input("dy", DType.F32, 2, 8);
        var ex = Assert.Throws<ArgumentException>(() => g.Apply(GegluGradientOp.Instance, x, dy));
        Assert.Contains("geglu_grad: dy is F32[2, 8] but geglu of x F32[2, 8] gives [2, 4]", ex.Message);
    }
}
