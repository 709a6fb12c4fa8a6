using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>Sizes of one 2-D convolution, derived from its input and weight shapes.</summary>
public readonly record struct Conv2dGeometry(
    int Batch, int InChannels, int OutChannels, int Height, int Width, int KernelHeight, int KernelWidth,
    int Stride, int Padding, int OutHeight, int OutWidth);

/// <summary>Sizes of one 1-D convolution or transposed convolution, derived from its input and weight shapes.</summary>
public readonly record struct Conv1dGeometry(
    int Batch, int InChannels, int OutChannels, int Length, int Kernel, int Stride, int Padding, int Dilation, int OutLength);

/// <summary>
/// y = conv2d(x, weight) + bias + residual, NCHW, PyTorch semantics: weight [Cout, Cin, kh, kw], symmetric zero
/// padding, one stride for both axes. Inputs: x, weight, then bias [Cout] and residual [N, Cout, Ho, Wo] when present.
/// </summary>
public sealed class Conv2dOp : Op<Conv2dOp>
{
    public Conv2dOp(int stride, int padding, bool hasBias, bool hasResidual)
    {
        if (stride < 1) throw Invalid("conv2d", $"stride must be >= 1, got {stride}");
        if (padding < 0) throw Invalid("conv2d", $"padding must be >= 0, got {padding}");
        Stride = stride;
        Padding = padding;
        HasBias = hasBias;
        HasResidual = hasResidual;
    }

    public int Stride { get; }
    public int Padding { get; }
    public bool HasBias { get; }
    public bool HasResidual { get; }
    public override string Name => "conv2d";
    public int BiasIndex => HasBias ? 2 : -1;
    public int ResidualIndex => HasResidual ? (HasBias ? 3 : 2) : -1;

    /// <summary>The output may take over the residual's memory: each element is read once, just before it is written.</summary>
    public override int InPlaceInput => ResidualIndex;

    public Conv2dGeometry Geometry(TensorShape x, TensorShape weight)
    {
        int outH = (x[2] + 2 * Padding - weight[2]) / Stride + 1;
        int outW = (x[3] + 2 * Padding - weight[3]) / Stride + 1;
        return new(x[0], x[1], weight[0], x[2], x[3], weight[2], weight[3], Stride, Padding, outH, outW);
    }

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, 2 + (HasBias ? 1 : 0) + (HasResidual ? 1 : 0));
        var x = inputs[0].Shape;
        var w = inputs[1].Shape;
        if (x.Rank != 4) throw Invalid(Name, $"input must be [N, C, H, W], got {x}");
        if (w.Rank != 4) throw Invalid(Name, $"weight must be [Cout, Cin, kh, kw], got {w}");
        if (w[1] != x[1]) throw Invalid(Name, $"weight {w} expects {w[1]} input channels but input {x} has {x[1]}");
        if (w[0] < 1 || w[2] < 1 || w[3] < 1) throw Invalid(Name, $"weight {w} is empty");
        if (x[2] + 2 * Padding < w[2] || x[3] + 2 * Padding < w[3])
            throw Invalid(Name, $"kernel {w[2]}x{w[3]} is larger than input {x} padded by {Padding}");
        var g = Geometry(x, w);
        var output = new TensorDesc(DType.F32, new TensorShape(g.Batch, g.OutChannels, g.OutHeight, g.OutWidth));
        ConvValidation.Epilogue(Name, inputs, BiasIndex, ResidualIndex, output);
        return output;
    }
}

/// <summary>
/// y = conv1d(leaky_relu(x)?, weight) + bias + residual, NCL, PyTorch semantics: weight [Cout, Cin, K], zero padding,
/// stride, dilation. The optional input leaky-ReLU (HiFi-GAN applies one before every conv) is fused into the
/// gather. Inputs: x, weight, then bias [Cout] and residual [N, Cout, Lout] when present.
/// </summary>
public sealed class Conv1dOp : Op<Conv1dOp>
{
    public Conv1dOp(int stride, int padding, int dilation, float? inputLeakySlope, bool hasBias, bool hasResidual)
    {
        if (stride < 1) throw Invalid("conv1d", $"stride must be >= 1, got {stride}");
        if (padding < 0) throw Invalid("conv1d", $"padding must be >= 0, got {padding}");
        if (dilation < 1) throw Invalid("conv1d", $"dilation must be >= 1, got {dilation}");
        ConvValidation.Slope("conv1d", inputLeakySlope);
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        InputLeakySlope = inputLeakySlope;
        HasBias = hasBias;
        HasResidual = hasResidual;
    }

    public int Stride { get; }
    public int Padding { get; }
    public int Dilation { get; }
    /// <summary>When set, the op convolves leaky_relu(x, slope) instead of x.</summary>
    public float? InputLeakySlope { get; }
    public bool HasBias { get; }
    public bool HasResidual { get; }
    public override string Name => "conv1d";
    public int BiasIndex => HasBias ? 2 : -1;
    public int ResidualIndex => HasResidual ? (HasBias ? 3 : 2) : -1;

    /// <summary>The output may take over the residual's memory: each element is read once, just before it is written.</summary>
    public override int InPlaceInput => ResidualIndex;

    public Conv1dGeometry Geometry(TensorShape x, TensorShape weight)
    {
        int outL = (x[2] + 2 * Padding - Dilation * (weight[2] - 1) - 1) / Stride + 1;
        return new(x[0], x[1], weight[0], x[2], weight[2], Stride, Padding, Dilation, outL);
    }

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, 2 + (HasBias ? 1 : 0) + (HasResidual ? 1 : 0));
        var x = inputs[0].Shape;
        var w = inputs[1].Shape;
        if (x.Rank != 3) throw Invalid(Name, $"input must be [N, C, L], got {x}");
        if (w.Rank != 3) throw Invalid(Name, $"weight must be [Cout, Cin, K], got {w}");
        if (w[1] != x[1]) throw Invalid(Name, $"weight {w} expects {w[1]} input channels but input {x} has {x[1]}");
        if (w[0] < 1 || w[2] < 1) throw Invalid(Name, $"weight {w} is empty");
        if (x[2] + 2 * Padding < Dilation * (w[2] - 1) + 1)
            throw Invalid(Name, $"kernel {w[2]} with dilation {Dilation} is longer than input {x} padded by {Padding}");
        var g = Geometry(x, w);
        var output = new TensorDesc(DType.F32, new TensorShape(g.Batch, g.OutChannels, g.OutLength));
        ConvValidation.Epilogue(Name, inputs, BiasIndex, ResidualIndex, output);
        return output;
    }
}

/// <summary>
/// y = conv_transpose1d(leaky_relu(x)?, weight) + bias, NCL, PyTorch semantics: weight [Cin, Cout, K], stride,
/// padding, output padding; Lout = (L - 1)·stride - 2·padding + K + outputPadding. Inputs: x, weight, then bias [Cout].
/// </summary>
public sealed class ConvTranspose1dOp : Op<ConvTranspose1dOp>
{
    public ConvTranspose1dOp(int stride, int padding, int outputPadding, float? inputLeakySlope, bool hasBias)
    {
        if (stride < 1) throw Invalid("conv_transpose1d", $"stride must be >= 1, got {stride}");
        if (padding < 0) throw Invalid("conv_transpose1d", $"padding must be >= 0, got {padding}");
        if (outputPadding < 0 || outputPadding >= stride)
            throw Invalid("conv_transpose1d", $"output padding must be in [0, stride {stride}), got {outputPadding}");
        ConvValidation.Slope("conv_transpose1d", inputLeakySlope);
        Stride = stride;
        Padding = padding;
        OutputPadding = outputPadding;
        InputLeakySlope = inputLeakySlope;
        HasBias = hasBias;
    }

    public int Stride { get; }
    public int Padding { get; }
    public int OutputPadding { get; }
    /// <summary>When set, the op upsamples leaky_relu(x, slope) instead of x.</summary>
    public float? InputLeakySlope { get; }
    public bool HasBias { get; }
    public override string Name => "conv_transpose1d";

    public Conv1dGeometry Geometry(TensorShape x, TensorShape weight)
    {
        int outL = (x[2] - 1) * Stride - 2 * Padding + weight[2] + OutputPadding;
        return new(x[0], x[1], weight[1], x[2], weight[2], Stride, Padding, 1, outL);
    }

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, HasBias ? 3 : 2);
        var x = inputs[0].Shape;
        var w = inputs[1].Shape;
        if (x.Rank != 3) throw Invalid(Name, $"input must be [N, C, L], got {x}");
        if (w.Rank != 3) throw Invalid(Name, $"weight must be [Cin, Cout, K], got {w}");
        if (w[0] != x[1]) throw Invalid(Name, $"weight {w} expects {w[0]} input channels but input {x} has {x[1]}");
        if (w[1] < 1 || w[2] < 1) throw Invalid(Name, $"weight {w} is empty");
        var g = Geometry(x, w);
        if (g.OutLength < 1) throw Invalid(Name, $"padding {Padding} leaves no output for input {x} and weight {w}");
        var output = new TensorDesc(DType.F32, new TensorShape(g.Batch, g.OutChannels, g.OutLength));
        ConvValidation.Epilogue(Name, inputs, HasBias ? 2 : -1, -1, output);
        return output;
    }
}

/// <summary>Checks shared by the convolution ops; messages name the op and the offending shapes.</summary>
internal static class ConvValidation
{
    public static void InputCount(string op, ReadOnlySpan<TensorDesc> inputs, int expected)
    {
        if (inputs.Length != expected) throw new ArgumentException($"{op}: expects {expected} inputs, got {inputs.Length}");
        foreach (var input in inputs)
            if (input.DType != DType.F32) throw new ArgumentException($"{op}: only f32 tensors are supported, got {input}");
    }

    public static void Slope(string op, float? slope)
    {
        if (slope is { } s && !(s >= 0f && s <= 1f))
            throw new ArgumentException($"{op}: input leaky-ReLU slope must be in [0, 1], got {s}");
    }

    public static void Epilogue(string op, ReadOnlySpan<TensorDesc> inputs, int biasIndex, int residualIndex, TensorDesc output)
    {
        var channels = output.Shape[1];
        if (biasIndex >= 0 && (inputs[biasIndex].Shape.Rank != 1 || inputs[biasIndex].Shape[0] != channels))
            throw new ArgumentException($"{op}: bias must be [{channels}], got {inputs[biasIndex].Shape}");
        if (residualIndex >= 0 && !inputs[residualIndex].Shape.SameDims(output.Shape))
            throw new ArgumentException($"{op}: residual must match the output {output.Shape}, got {inputs[residualIndex].Shape}");
    }
}

/// <summary>Graph-building entry points for the convolution family.</summary>
public static class ConvGraphExtensions
{
    /// <summary>conv2d(x, weight) + bias + residual; weight [Cout, Cin, kh, kw].</summary>
    public static Value Conv2d(this GraphBuilder g, Value x, Value weight, Value? bias = null, int stride = 1, int padding = 0,
        Value? residual = null) =>
        g.Apply(new Conv2dOp(stride, padding, bias is not null, residual is not null), Inputs(x, weight, bias, residual));

    /// <summary>conv1d(leaky_relu(x, inputLeakySlope) or x, weight) + bias + residual; weight [Cout, Cin, K].</summary>
    public static Value Conv1d(this GraphBuilder g, Value x, Value weight, Value? bias = null, int stride = 1, int padding = 0,
        int dilation = 1, float? inputLeakySlope = null, Value? residual = null) =>
        g.Apply(new Conv1dOp(stride, padding, dilation, inputLeakySlope, bias is not null, residual is not null),
            Inputs(x, weight, bias, residual));

    /// <summary>conv_transpose1d(leaky_relu(x, inputLeakySlope) or x, weight) + bias; weight [Cin, Cout, K].</summary>
    public static Value ConvTranspose1d(this GraphBuilder g, Value x, Value weight, Value? bias = null, int stride = 1,
        int padding = 0, int outputPadding = 0, float? inputLeakySlope = null) =>
        g.Apply(new ConvTranspose1dOp(stride, padding, outputPadding, inputLeakySlope, bias is not null), Inputs(x, weight, bias, null));

    private static Value[] Inputs(Value x, Value weight, Value? bias, Value? residual)
    {
        var list = new List<Value>(4) { x, weight };
        if (bias is not null) list.Add(bias);
        if (residual is not null) list.Add(residual);
        return [.. list];
    }
}
