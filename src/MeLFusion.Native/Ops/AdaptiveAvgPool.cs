using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Adaptive average pooling of one axis (1-D) or of the last two dims (2-D), as <c>F.adaptive_avg_pool1d/2d</c>:
/// output bin i of M over an input dim of N averages inputs [floor(i·N/M), ceil((i+1)·N/M)). M may exceed N
/// (bins then overlap and repeat inputs). f32 only.
/// </summary>
public sealed class AdaptiveAvgPoolOp : Op<AdaptiveAvgPoolOp>
{
    private readonly int[] _outputSizes;

    private AdaptiveAvgPoolOp(int firstAxis, int[] outputSizes)
    {
        foreach (int size in outputSizes)
            if (size <= 0) throw Invalid("adaptive_avg_pool", $"output sizes must be positive, got [{string.Join(", ", outputSizes)}]");
        FirstAxis = firstAxis;
        _outputSizes = outputSizes;
    }

    /// <summary>Pools <paramref name="axis"/> (negative counts from the end) to <paramref name="outputSize"/>.</summary>
    public static AdaptiveAvgPoolOp OneD(int axis, int outputSize) => new(axis, [outputSize]);

    /// <summary>Pools the last two dims to <paramref name="outputHeight"/> x <paramref name="outputWidth"/>.</summary>
    public static AdaptiveAvgPoolOp TwoD(int outputHeight, int outputWidth) => new(-2, [outputHeight, outputWidth]);

    /// <summary>The first pooled axis as given (negative counts from the end); the pooled axes follow it.</summary>
    public int FirstAxis { get; }
    public ReadOnlySpan<int> OutputSizes => _outputSizes;
    public override string Name => _outputSizes.Length == 1 ? "adaptive_avg_pool1d" : "adaptive_avg_pool2d";

    /// <summary>The first pooled axis of a rank-<paramref name="rank"/> input, in [0, rank).</summary>
    public int ResolveFirstAxis(int rank) => FirstAxis < 0 ? FirstAxis + rank : FirstAxis;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input, got {inputs.Length}");
        var x = inputs[0];
        if (x.DType != DType.F32) throw Invalid(Name, $"supports f32 only, got {x}");
        int axis = ResolveFirstAxis(x.Shape.Rank);
        if (axis < 0 || axis + _outputSizes.Length > x.Shape.Rank)
            throw Invalid(Name, $"cannot pool {_outputSizes.Length} dim(s) from axis {FirstAxis} of {x}");
        var dims = x.Shape.Dims.ToArray();
        for (int i = 0; i < _outputSizes.Length; i++)
        {
            if (dims[axis + i] == 0) throw Invalid(Name, $"pooled dim {axis + i} of {x} is empty");
            dims[axis + i] = _outputSizes[i];
        }
        return new TensorDesc(DType.F32, new TensorShape(dims));
    }

    /// <summary>2-D pooling runs as two separable 1-D passes; the workspace holds the smaller of the two possible
    /// intermediates (pool H first: [.., outH, W]; pool W first: [.., H, outW]).</summary>
    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output)
    {
        if (_outputSizes.Length == 1) return 0;
        var x = inputs[0].Shape;
        long outer = x.ElementCount / ((long)x[-2] * x[-1]);
        return TwoDIntermediateElements(outer, x[-2], x[-1], _outputSizes[0], _outputSizes[1]).Elements * sizeof(float);
    }

    /// <summary>Size of the intermediate of a separable 2-D pool, and whether pooling H first gives the smaller one.</summary>
    public static (long Elements, bool PoolHeightFirst) TwoDIntermediateElements(long outer, int height, int width, int outHeight, int outWidth)
    {
        long heightFirst = outer * outHeight * width;
        long widthFirst = outer * height * outWidth;
        return heightFirst <= widthFirst ? (heightFirst, true) : (widthFirst, false);
    }
}

public static class AdaptiveAvgPoolGraphExtensions
{
    /// <summary>Adaptive average pooling of <paramref name="axis"/> to <paramref name="outputSize"/> bins.</summary>
    public static Value AdaptiveAvgPool1d(this GraphBuilder g, Value x, int axis, int outputSize) =>
        g.Apply(AdaptiveAvgPoolOp.OneD(axis, outputSize), x);

    /// <summary>Adaptive average pooling of the last two dims to <paramref name="outputHeight"/> x <paramref name="outputWidth"/>.</summary>
    public static Value AdaptiveAvgPool2d(this GraphBuilder g, Value x, int outputHeight, int outputWidth) =>
        g.Apply(AdaptiveAvgPoolOp.TwoD(outputHeight, outputWidth), x);
}
