using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Nearest-neighbour upsampling by 2 of the last two dims: [N, C, H, W] -> [N, C, 2H, 2W], as
/// <c>F.interpolate(x, scale_factor=2, mode="nearest")</c>. Pure data movement, so any 2- or 4-byte dtype works.
/// </summary>
public sealed class UpsampleNearest2xOp : Op<UpsampleNearest2xOp>, IDifferentiable
{
    public static readonly UpsampleNearest2xOp Instance = new();
    private UpsampleNearest2xOp() { }

    public override string Name => "upsample_nearest2x";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input, got {inputs.Length}");
        var x = inputs[0];
        if (x.Shape.Rank != 4) throw Invalid(Name, $"expects [N, C, H, W], got {x}");
        if (x.DType.Size() is not (2 or 4))
            throw Invalid(Name, $"supports 2- and 4-byte dtypes (f32, f16, bf16, i32), got {x}");
        var dims = x.Shape.Dims.ToArray();
        dims[2] = checked(dims[2] * 2);
        dims[3] = checked(dims[3] * 2);
        return new TensorDesc(x.DType, new TensorShape(dims));
    }

    /// <summary>
    /// Every input pixel feeds one 2x2 block, so its gradient is that block's sum: the 2x2 average pool times 4 (both
    /// scalings are powers of two, so this is the exact sum of the four, rounded once per addition).
    /// </summary>
    public void Backward(GradientContext context)
    {
        var x = context.Input(0).Shape;
        var g = context.Graph;
        context.AddGradient(0, g.Scale(g.AdaptiveAvgPool2d(context.OutputGradient, x[2], x[3]), 4f));
    }
}

public static class UpsampleGraphExtensions
{
    /// <summary>[N, C, H, W] -> [N, C, 2H, 2W], every pixel repeated in a 2x2 block.</summary>
    public static Value UpsampleNearest2x(this GraphBuilder g, Value x) => g.Apply(UpsampleNearest2xOp.Instance, x);
}
