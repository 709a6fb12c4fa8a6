using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Adaptive average pooling of one axis (1-D) or of the last two dims (2-D), as <c>F.adaptive_avg_pool1d/2d</c>:
/// output bin i of M over an input dim of N averages inputs [floor(i·N/M), ceil((i+1)·N/M)). M may exceed N
/// (bins then overlap and repeat inputs). f32 only.
/// </summary>
public sealed class AdaptiveAvgPoolOp : Op<AdaptiveAvgPoolOp>, IDifferentiable
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

    public void Backward(GradientContext context)
    {
        var x = context.Input(0).Shape;
        int axis = ResolveFirstAxis(x.Rank);
        var inputSizes = x.Dims.Slice(axis, _outputSizes.Length).ToArray();
        context.AddGradient(0, context.Graph.Apply(new AdaptiveAvgPoolGradientOp(axis, inputSizes), context.OutputGradient));
    }
}

/// <summary>
/// The gradient of <see cref="AdaptiveAvgPoolOp"/>: dy (the pooled dims) spread back over the input dims
/// <see cref="InputSizes"/>. Along a pooled dim of n inputs and m bins, input i lies in bins [floor(i·m/n),
/// ceil((i+1)·m/n)) and receives Σ dy[bin] / |bin| over them, in bin order. 2-D runs as two separable 1-D passes
/// through a workspace, like the forward. f32 only.
/// </summary>
public sealed class AdaptiveAvgPoolGradientOp : Op<AdaptiveAvgPoolGradientOp>
{
    private readonly int[] _inputSizes;

    /// <param name="firstAxis">The first pooled axis (negative counts from the end); the pooled axes follow it.</param>
    /// <param name="inputSizes">The pooled dims of the forward input: one (1-D) or two (2-D).</param>
    public AdaptiveAvgPoolGradientOp(int firstAxis, int[] inputSizes)
    {
        if (inputSizes.Length is not (1 or 2) || inputSizes.Any(size => size <= 0))
            throw new ArgumentException($"adaptive_avg_pool_backward: needs one or two positive input sizes, got [{string.Join(", ", inputSizes)}]");
        FirstAxis = firstAxis;
        _inputSizes = (int[])inputSizes.Clone();
    }

    public int FirstAxis { get; }
    public ReadOnlySpan<int> InputSizes => _inputSizes;
    public override string Name => _inputSizes.Length == 1 ? "adaptive_avg_pool1d_backward" : "adaptive_avg_pool2d_backward";

    public int ResolveFirstAxis(int rank) => FirstAxis < 0 ? FirstAxis + rank : FirstAxis;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input (dy), got {inputs.Length}");
        var dy = inputs[0];
        if (dy.DType != DType.F32) throw Invalid(Name, $"supports f32 only, got dy {dy}");
        int axis = ResolveFirstAxis(dy.Shape.Rank);
        if (axis < 0 || axis + _inputSizes.Length > dy.Shape.Rank)
            throw Invalid(Name, $"cannot spread {_inputSizes.Length} dim(s) from axis {FirstAxis} of dy {dy}");
        var dims = dy.Shape.Dims.ToArray();
        for (int i = 0; i < _inputSizes.Length; i++)
        {
            if (dims[axis + i] == 0) throw Invalid(Name, $"pooled dim {axis + i} of dy {dy} is empty");
            dims[axis + i] = _inputSizes[i];
        }
        return new TensorDesc(DType.F32, new TensorShape(dims));
    }

    /// <summary>The intermediate between the two 1-D passes of a 2-D gradient (see <see cref="Passes"/>).</summary>
    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output)
    {
        var (first, second) = Passes(inputs[0].Shape);
        return second is null ? 0 : first.Output * sizeof(float);
    }

    /// <summary>
    /// The 1-D passes over contiguous dy: one (dy to dx) for 1-D; for 2-D a first pass from dy into the workspace and
    /// a second from there into dx, spreading first the dim that leaves the smaller intermediate.
    /// </summary>
    public (PoolPass First, PoolPass? Second) Passes(TensorShape dy)
    {
        int axis = ResolveFirstAxis(dy.Rank);
        if (_inputSizes.Length == 1)
        {
            long inner = 1;
            for (int a = axis + 1; a < dy.Rank; a++) inner *= dy[a];
            return (new PoolPass(dy.ElementCount / (dy[axis] * inner), dy[axis], _inputSizes[0], inner), null);
        }
        int binsHigh = dy[-2], binsWide = dy[-1], height = _inputSizes[0], width = _inputSizes[1];
        long outer = dy.ElementCount / ((long)binsHigh * binsWide);
        return AdaptiveAvgPoolOp.TwoDIntermediateElements(outer, binsHigh, binsWide, height, width).PoolHeightFirst
            ? (new PoolPass(outer, binsHigh, height, binsWide), new PoolPass(outer * height, binsWide, width, 1))
            : (new PoolPass(outer * binsHigh, binsWide, width, 1), new PoolPass(outer, binsHigh, height, width));
    }
}

/// <summary>
/// One 1-D pass of a separable pooling gradient over a contiguous [Outer, Bins, Inner] array, giving [Outer, Inputs,
/// Inner].
/// </summary>
public readonly record struct PoolPass(long Outer, int Bins, int Inputs, long Inner)
{
    /// <summary>Elements the pass writes.</summary>
    public long Output => Outer * Inputs * Inner;
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
