using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Zero padding of the last two dims, each side on its own: <c>F.pad(x, (left, right, top, bottom))</c>. The LDM
/// VAE's downsampler pads only right and bottom before its stride-2 convolution.
/// </summary>
public sealed class Pad2dOp(int left, int right, int top, int bottom) : Op<Pad2dOp>, IDifferentiable
{
    public int Left { get; } = left >= 0 ? left : throw new ArgumentOutOfRangeException(nameof(left), "pad2d: padding must be non-negative");
    public int Right { get; } = right >= 0 ? right : throw new ArgumentOutOfRangeException(nameof(right), "pad2d: padding must be non-negative");
    public int Top { get; } = top >= 0 ? top : throw new ArgumentOutOfRangeException(nameof(top), "pad2d: padding must be non-negative");
    public int Bottom { get; } = bottom >= 0 ? bottom : throw new ArgumentOutOfRangeException(nameof(bottom), "pad2d: padding must be non-negative");

    public override string Name => "pad2d";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input, got {inputs.Length}");
        var x = inputs[0];
        if (x.Shape.Rank < 2) throw Invalid(Name, $"needs at least 2 dims, got {x}");
        var dims = x.Shape.Dims.ToArray();
        dims[^2] = checked(dims[^2] + Top + Bottom);
        dims[^1] = checked(dims[^1] + Left + Right);
        return new TensorDesc(x.DType, new TensorShape(dims));
    }

    /// <summary>The padding is constant, so x's gradient is the window of dy that x was copied into (a view).</summary>
    public void Backward(GradientContext context)
    {
        var x = context.Input(0).Shape;
        var g = context.Graph;
        var rows = g.Slice(context.OutputGradient, x.Rank - 2, Top, x[-2]);
        context.AddGradient(0, g.Slice(rows, x.Rank - 1, Left, x[-1]));
    }
}

public static class PadGraphExtensions
{
    public static Value Pad2d(this GraphBuilder g, Value x, int left, int right, int top, int bottom) =>
        g.Apply(new Pad2dOp(left, right, top, bottom), x);
}
