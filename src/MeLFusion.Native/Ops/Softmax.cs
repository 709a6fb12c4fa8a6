using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>Numerically stable softmax over the last dim of an F32 tensor: exp(x - max) / sum(exp(x - max)).</summary>
public sealed class SoftmaxOp : Op<SoftmaxOp>
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
}

public static class SoftmaxExtensions
{
    /// <summary>Softmax of x over its last dim.</summary>
    public static Value Softmax(this GraphBuilder g, Value x) => g.Apply(SoftmaxOp.Instance, x);
}
