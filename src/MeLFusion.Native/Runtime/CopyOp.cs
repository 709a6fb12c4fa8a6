namespace MeLFusion.Native.Runtime;

/// <summary>Copies any strided view into a fresh contiguous tensor of the same dtype.</summary>
public sealed class CopyOp : Op<CopyOp>, IDifferentiable
{
    public static readonly CopyOp Instance = new();
    private CopyOp() { }

    public override string Name => "copy";
    public override bool AcceptsStridedInputs => true;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input, got {inputs.Length}");
        return new TensorDesc(inputs[0].DType, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }

    /// <summary>A copy passes its gradient through; the input (often a view) sends it on to what it views.</summary>
    public void Backward(GradientContext context) => context.AddGradient(0, context.OutputGradient);
}
