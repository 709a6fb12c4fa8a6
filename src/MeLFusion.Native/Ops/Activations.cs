using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>The elementwise activation functions of <see cref="ActivationOp"/>.</summary>
public enum Activation
{
    /// <summary>x * Φ(x), Φ the standard normal CDF (torch GELU, approximate="none").</summary>
    GeluErf,
    /// <summary>0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))) (torch GELU, approximate="tanh").</summary>
    GeluTanh,
    /// <summary>x * sigmoid(x).</summary>
    Silu,
    /// <summary>x if x &gt; 0, else slope * x.</summary>
    LeakyRelu,
    Tanh,
}

/// <summary>An elementwise activation on an F32 tensor of any shape; may run in place.</summary>
public sealed class ActivationOp(Activation activation, float negativeSlope = 0f) : Op<ActivationOp>
{
    public Activation Activation { get; } = activation;
    /// <summary>Slope for negative inputs of <see cref="Ops.Activation.LeakyRelu"/>; unused otherwise.</summary>
    public float NegativeSlope { get; } = negativeSlope;

    public override string Name => Activation switch
    {
        Activation.GeluErf => "gelu",
        Activation.GeluTanh => "gelu_tanh",
        Activation.Silu => "silu",
        Activation.LeakyRelu => "leaky_relu",
        Activation.Tanh => "tanh",
        _ => throw new ArgumentOutOfRangeException(nameof(Activation), Activation, "unknown activation"),
    };

    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }
}

/// <summary>
/// GEGLU gate of diffusers' FeedForward: x [..., 2H] is split as hidden, gate = x.chunk(2, dim=-1) and the output
/// [..., H] is hidden * gelu(gate) (exact erf GELU).
/// </summary>
public sealed class GegluOp : Op<GegluOp>
{
    public static readonly GegluOp Instance = new();
    private GegluOp() { }

    public override string Name => "geglu";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        var x = inputs[0];
        if (x.Shape.Rank < 1 || x.Shape[-1] % 2 != 0)
            throw Invalid(Name, $"x is {x}; the last dim must be even (hidden and gate halves)");
        var dims = x.Shape.Dims.ToArray();
        dims[^1] /= 2;
        return new TensorDesc(DType.F32, new TensorShape(dims));
    }
}

public static class ActivationExtensions
{
    /// <summary>GELU; <paramref name="tanhApproximation"/> selects torch's approximate="tanh" form.</summary>
    public static Value Gelu(this GraphBuilder g, Value x, bool tanhApproximation = false) =>
        g.Apply(new ActivationOp(tanhApproximation ? Activation.GeluTanh : Activation.GeluErf), x);

    public static Value Silu(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Silu), x);

    public static Value LeakyRelu(this GraphBuilder g, Value x, float negativeSlope = 0.01f) =>
        g.Apply(new ActivationOp(Activation.LeakyRelu, negativeSlope), x);

    public static Value Tanh(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Tanh), x);

    /// <summary>hidden * gelu(gate) where hidden, gate = x.chunk(2, dim=-1).</summary>
    public static Value Geglu(this GraphBuilder g, Value x) => g.Apply(GegluOp.Instance, x);
}
