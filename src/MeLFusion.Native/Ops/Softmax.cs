using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>Numerically stable softmax over the last dim of an F32 tensor: exp(x - max) / sum(exp(x - max)).</summary>
public sealed class SoftmaxOp : Op<SoftmaxOp>, IDifferentiable
{
    public static readonly SoftmaxOp Instance = new();
    private SoftmaxOp() { }

    public override string Name => "softmax";
    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        var x = inputs[0];
        if (x.Shape.Rank < 1) throw Invalid(Name, $"x is {x}; expected at least one dim");
        return new TensorDesc(DType.F32, new TensorShape(x.Shape.Dims.ToArray()));
    }

    /// <summary>From the output y, not x: dx = y · (dy - Σ dy·y) per row.</summary>
    public void Backward(GradientContext context) =>
        context.AddGradient(0, context.Graph.Apply(SoftmaxBackwardOp.Instance, context.Output, context.OutputGradient));
}

/// <summary>
/// The gradient of <see cref="SoftmaxOp"/> over the last dim: inputs y (the softmax output) and dy (its gradient), output
/// dx = y · (dy - Σ_row dy·y). May overwrite dy.
/// </summary>
public sealed class SoftmaxBackwardOp : Op<SoftmaxBackwardOp>
{
    public static readonly SoftmaxBackwardOp Instance = new();
    private SoftmaxBackwardOp() { }

    public override string Name => "softmax_backward";
    public override int InPlaceInput => 1;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "y", "dy");
        TensorDesc y = inputs[0], dy = inputs[1];
        if (y.Shape.Rank < 1) throw Invalid(Name, $"y is {y}; expected at least one dim");
        if (!dy.Shape.SameDims(y.Shape)) throw Invalid(Name, $"dy is {dy} but y is {y}; they must have the same dims");
        return new TensorDesc(DType.F32, new TensorShape(y.Shape.Dims.ToArray()));
    }
}

public static class SoftmaxExtensions
{
    /// <summary>Softmax of x over its last dim.</summary>
    public static Value Softmax(this GraphBuilder g, Value x) => g.Apply(SoftmaxOp.Instance, x);
}
