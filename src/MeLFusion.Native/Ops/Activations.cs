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
    /// <summary>e^x.</summary>
    Exp,
    /// <summary>Natural logarithm: -infinity at 0, NaN below.</summary>
    Log,
    /// <summary>|x|; its gradient is sign(x), 0 at 0 (as torch).</summary>
    Abs,
    /// <summary>√x: NaN below 0; the gradient is infinite at 0.</summary>
    Sqrt,
    /// <summary>x².</summary>
    Square,
    /// <summary>1 / (1 + e^-x).</summary>
    Sigmoid,
}

/// <summary>An elementwise activation on an F32 tensor of any shape; may run in place.</summary>
public sealed class ActivationOp(Activation activation, float negativeSlope = 0f) : Op<ActivationOp>, IDifferentiable
{
    public Activation Activation { get; } = activation;
    /// <summary>Slope for negative inputs of <see cref="Ops.Activation.LeakyRelu"/>; unused otherwise.</summary>
    public float NegativeSlope { get; } = negativeSlope;

    public override string Name => ActivationNames.Of(Activation);

    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }

    /// <summary>dx = dy · f'(x), with f' evaluated from x.</summary>
    public void Backward(GradientContext context) =>
        context.AddGradient(0, context.Graph.Apply(new ActivationGradientOp(Activation, NegativeSlope), context.Input(0), context.OutputGradient));
}

/// <summary>
/// The gradient of <see cref="ActivationOp"/>: inputs x and dy (the output's gradient, x's dims), output dx = dy · f'(x).
/// May overwrite dy.
/// </summary>
public sealed class ActivationGradientOp(Activation activation, float negativeSlope = 0f) : Op<ActivationGradientOp>
{
    public Activation Activation { get; } = activation;
    /// <summary>Slope for negative inputs of <see cref="Ops.Activation.LeakyRelu"/>; unused otherwise.</summary>
    public float NegativeSlope { get; } = negativeSlope;

    public override string Name => ActivationNames.Of(Activation) + "_grad";

    public override int InPlaceInput => 1;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x", "dy");
        if (!inputs[1].Shape.SameDims(inputs[0].Shape))
            throw Invalid(Name, $"dy is {inputs[1]} but x is {inputs[0]}; they must have the same dims");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }
}

internal static class ActivationNames
{
    public static string Of(Activation activation) => activation switch
    {
        Activation.GeluErf => "gelu",
        Activation.GeluTanh => "gelu_tanh",
        Activation.Silu => "silu",
        Activation.LeakyRelu => "leaky_relu",
        Activation.Tanh => "tanh",
        Activation.Exp => "exp",
        Activation.Log => "log",
        Activation.Abs => "abs",
        Activation.Sqrt => "sqrt",
        Activation.Square => "square",
        Activation.Sigmoid => "sigmoid",
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation"),
    };
}

/// <summary>
/// GEGLU gate of diffusers' FeedForward: x [..., 2H] is split as hidden, gate = x.chunk(2, dim=-1) and the output
/// [..., H] is hidden * gelu(gate) (exact erf GELU).
/// </summary>
public sealed class GegluOp : Op<GegluOp>, IDifferentiable
{
    public static readonly GegluOp Instance = new();
    private GegluOp() { }

    public override string Name => "geglu";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        return new TensorDesc(DType.F32, GatedShape(Name, inputs[0]));
    }

    /// <summary>The output dims for x [..., 2H]: [..., H]; throws (naming <paramref name="op"/>) unless the last dim is even.</summary>
    internal static TensorShape GatedShape(string op, TensorDesc x)
    {
        if (x.Shape.Rank < 1 || x.Shape[-1] % 2 != 0)
            throw Invalid(op, $"x is {x}; the last dim must be even (hidden and gate halves)");
        var dims = x.Shape.Dims.ToArray();
        dims[^1] /= 2;
        return new TensorShape(dims);
    }

    public void Backward(GradientContext context) =>
        context.AddGradient(0, context.Graph.Apply(GegluGradientOp.Instance, context.Input(0), context.OutputGradient));
}

/// <summary>
/// The gradient of <see cref="GegluOp"/>: inputs x [..., 2H] and dy [..., H]; output dx [..., 2H] holding
/// d hidden = dy · gelu(gate) and d gate = dy · hidden · gelu'(gate) in x's layout.
/// </summary>
public sealed class GegluGradientOp : Op<GegluGradientOp>
{
    public static readonly GegluGradientOp Instance = new();
    private GegluGradientOp() { }

    public override string Name => "geglu_grad";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x", "dy");
        TensorDesc x = inputs[0], dy = inputs[1];
        var y = GegluOp.GatedShape(Name, x);
        if (!dy.Shape.SameDims(y))
            throw Invalid(Name, $"dy is {dy} but geglu of x {x} gives {y}; they must have the same dims");
        return new TensorDesc(DType.F32, new TensorShape(x.Shape.Dims.ToArray()));
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

    /// <summary>e^x.</summary>
    public static Value Exp(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Exp), x);

    /// <summary>Natural logarithm of x.</summary>
    public static Value Log(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Log), x);

    /// <summary>|x|.</summary>
    public static Value Abs(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Abs), x);

    /// <summary>√x.</summary>
    public static Value Sqrt(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Sqrt), x);

    /// <summary>x².</summary>
    public static Value Square(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Square), x);

    /// <summary>1 / (1 + e^-x).</summary>
    public static Value Sigmoid(this GraphBuilder g, Value x) => g.Apply(new ActivationOp(Activation.Sigmoid), x);

    /// <summary>hidden * gelu(gate) where hidden, gate = x.chunk(2, dim=-1).</summary>
    public static Value Geglu(this GraphBuilder g, Value x) => g.Apply(GegluOp.Instance, x);
}
