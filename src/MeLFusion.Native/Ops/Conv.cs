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
public sealed class Conv2dOp : Op<Conv2dOp>, IDifferentiable
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

    /// <summary>dx by <see cref="Conv2dInputGradientOp"/>, dweight by <see cref="Conv2dWeightGradientOp"/>; bias and residual as <see cref="ConvGradients.Epilogue"/>.</summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        Value x = context.Input(0), weight = context.Input(1), dy = context.OutputGradient;
        if (context.NeedsGradient(0))
            context.AddGradient(0, g.Conv2dInputGradient(dy, weight, x.Shape[2], x.Shape[3], Stride, Padding));
        if (context.NeedsGradient(1))
            context.AddGradient(1, g.Conv2dWeightGradient(x, dy, weight.Shape[2], weight.Shape[3], Stride, Padding));
        ConvGradients.Epilogue(context, BiasIndex, ResidualIndex);
    }
}

/// <summary>
/// y = conv1d(leaky_relu(x)?, weight) + bias + residual, NCL, PyTorch semantics: weight [Cout, Cin, K], zero padding,
/// stride, dilation. The optional input leaky-ReLU (HiFi-GAN applies one before every conv) is fused into the
/// gather. Inputs: x, weight, then bias [Cout] and residual [N, Cout, Lout] when present.
/// </summary>
public sealed class Conv1dOp : Op<Conv1dOp>, IDifferentiable
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

    /// <summary>
    /// dx by <see cref="Conv1dInputGradientOp"/> (the gradient of the activated input), then through the leaky-ReLU by
    /// <see cref="ActivationGradientOp"/> (leaky ReLU); dweight by <see cref="Conv1dWeightGradientOp"/>, which activates x as it
    /// gathers it; bias and residual as <see cref="ConvGradients.Epilogue"/>.
    /// </summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        Value x = context.Input(0), weight = context.Input(1), dy = context.OutputGradient;
        if (context.NeedsGradient(0))
        {
            var activated = g.Conv1dInputGradient(dy, weight, x.Shape[2], Stride, Padding, Dilation);
            context.AddGradient(0, InputLeakySlope is { } slope ? g.Apply(new ActivationGradientOp(Activation.LeakyRelu, slope), x, activated) : activated);
        }
        if (context.NeedsGradient(1))
            context.AddGradient(1, g.Conv1dWeightGradient(x, dy, weight.Shape[2], Stride, Padding, Dilation, InputLeakySlope));
        ConvGradients.Epilogue(context, BiasIndex, ResidualIndex);
    }
}

/// <summary>
/// y = conv_transpose1d(leaky_relu(x)?, weight) + bias, NCL, PyTorch semantics: weight [Cin, Cout, K], stride,
/// padding, output padding; Lout = (L - 1)·stride - 2·padding + K + outputPadding. Inputs: x, weight, then bias [Cout].
/// </summary>
public sealed class ConvTranspose1dOp : Op<ConvTranspose1dOp>, IDifferentiable
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

    /// <summary>
    /// A transposed convolution is the adjoint of a convolution with the same weight layout: y = convT(a, w) means
    /// dL/da = conv1d(dy, w) with this stride and padding (weight [Cin, Cout, K] read as conv1d's [Cout', Cin', K], and
    /// the output padding only adds positions that conv1d's floor division drops), and dL/dw = the conv1d weight
    /// gradient with dy as that convolution's input and a as its output gradient. a = leaky_relu(x) when the input
    /// activation is fused; dx then goes through <see cref="ActivationGradientOp"/> (leaky ReLU).
    /// </summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        Value x = context.Input(0), weight = context.Input(1), dy = context.OutputGradient;
        if (context.NeedsGradient(0))
        {
            var activated = g.Conv1d(dy, weight, stride: Stride, padding: Padding);
            context.AddGradient(0, InputLeakySlope is { } slope ? g.Apply(new ActivationGradientOp(Activation.LeakyRelu, slope), x, activated) : activated);
        }
        if (context.NeedsGradient(1))
        {
            var activated = InputLeakySlope is { } slope ? g.LeakyRelu(x, slope) : x;
            context.AddGradient(1, g.Conv1dWeightGradient(dy, activated, weight.Shape[2], Stride, Padding));
        }
        ConvGradients.Epilogue(context, HasBias ? 2 : -1, -1);
    }
}

/// <summary>
/// The input gradient of <see cref="Conv2dOp"/>: dx [N, Cin, H, W] = conv_transpose2d(dy, weight) from dy
/// [N, Cout, Ho, Wo] and weight [Cout, Cin, kh, kw], every input position summing the products of the outputs whose
/// window covers it. Positions no window covers (trailing rows or columns a stride skips) get 0. H and W are
/// parameters: several inputs give the same Ho×Wo. Inputs: dy, weight.
/// </summary>
public sealed class Conv2dInputGradientOp : Op<Conv2dInputGradientOp>
{
    public Conv2dInputGradientOp(int height, int width, int stride, int padding)
    {
        if (height < 1 || width < 1) throw Invalid("conv2d_input_grad", $"input size must be positive, got {height}x{width}");
        Forward = new Conv2dOp(stride, padding, hasBias: false, hasResidual: false);
        Height = height;
        Width = width;
    }

    /// <summary>The convolution this is the gradient of (its stride and padding).</summary>
    public Conv2dOp Forward { get; }
    public int Height { get; }
    public int Width { get; }
    public override string Name => "conv2d_input_grad";

    /// <summary>The forward convolution's geometry.</summary>
    public Conv2dGeometry Geometry(TensorShape dy, TensorShape weight) =>
        Forward.Geometry(new TensorShape(dy[0], weight[1], Height, Width), weight);

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, 2);
        var dy = inputs[0].Shape;
        var w = inputs[1].Shape;
        if (dy.Rank != 4) throw Invalid(Name, $"output gradient must be [N, Cout, Ho, Wo], got {dy}");
        if (w.Rank != 4) throw Invalid(Name, $"weight must be [Cout, Cin, kh, kw], got {w}");
        var x = new TensorDesc(DType.F32, new TensorShape(dy[0], w[1], Height, Width));
        ConvValidation.MatchesForward(Name, Forward, x, inputs[1], dy);
        return x;
    }
}

/// <summary>
/// The weight gradient of <see cref="Conv2dOp"/>: dweight [Cout, Cin, kh, kw] = Σ over images and output pixels of
/// dy[n, co, pixel] · x[n, ci, window tap], i.e. dy times the im2col matrix of x, transposed. Inputs: x, dy.
/// </summary>
public sealed class Conv2dWeightGradientOp : Op<Conv2dWeightGradientOp>
{
    public Conv2dWeightGradientOp(int kernelHeight, int kernelWidth, int stride, int padding)
    {
        if (kernelHeight < 1 || kernelWidth < 1)
            throw Invalid("conv2d_weight_grad", $"kernel size must be positive, got {kernelHeight}x{kernelWidth}");
        Forward = new Conv2dOp(stride, padding, hasBias: false, hasResidual: false);
        KernelHeight = kernelHeight;
        KernelWidth = kernelWidth;
    }

    /// <summary>The convolution this is the gradient of (its stride and padding).</summary>
    public Conv2dOp Forward { get; }
    public int KernelHeight { get; }
    public int KernelWidth { get; }
    public override string Name => "conv2d_weight_grad";

    /// <summary>The forward convolution's geometry.</summary>
    public Conv2dGeometry Geometry(TensorShape x, TensorShape dy) =>
        Forward.Geometry(x, new TensorShape(dy[1], x[1], KernelHeight, KernelWidth));

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, 2);
        var x = inputs[0].Shape;
        var dy = inputs[1].Shape;
        if (x.Rank != 4) throw Invalid(Name, $"input must be [N, Cin, H, W], got {x}");
        if (dy.Rank != 4) throw Invalid(Name, $"output gradient must be [N, Cout, Ho, Wo], got {dy}");
        var weight = new TensorDesc(DType.F32, new TensorShape(dy[1], x[1], KernelHeight, KernelWidth));
        ConvValidation.MatchesForward(Name, Forward, inputs[0], weight, dy);
        return weight;
    }
}

/// <summary>
/// The input gradient of <see cref="Conv1dOp"/> before its input activation: d[N, Cin, L] = conv_transpose1d(dy,
/// weight) with the convolution's stride, padding and dilation, from dy [N, Cout, Lout] and weight [Cout, Cin, K].
/// Positions no window covers get 0; L is a parameter, as several lengths give the same Lout. Inputs: dy, weight.
/// </summary>
public sealed class Conv1dInputGradientOp : Op<Conv1dInputGradientOp>
{
    public Conv1dInputGradientOp(int length, int stride, int padding, int dilation)
    {
        if (length < 1) throw Invalid("conv1d_input_grad", $"input length must be positive, got {length}");
        Forward = new Conv1dOp(stride, padding, dilation, inputLeakySlope: null, hasBias: false, hasResidual: false);
        Length = length;
    }

    /// <summary>The convolution this is the gradient of (its stride, padding and dilation).</summary>
    public Conv1dOp Forward { get; }
    public int Length { get; }
    public override string Name => "conv1d_input_grad";

    /// <summary>The forward convolution's geometry.</summary>
    public Conv1dGeometry Geometry(TensorShape dy, TensorShape weight) =>
        Forward.Geometry(new TensorShape(dy[0], weight[1], Length), weight);

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, 2);
        var dy = inputs[0].Shape;
        var w = inputs[1].Shape;
        if (dy.Rank != 3) throw Invalid(Name, $"output gradient must be [N, Cout, Lout], got {dy}");
        if (w.Rank != 3) throw Invalid(Name, $"weight must be [Cout, Cin, K], got {w}");
        var x = new TensorDesc(DType.F32, new TensorShape(dy[0], w[1], Length));
        ConvValidation.MatchesForward(Name, Forward, x, inputs[1], dy);
        return x;
    }
}

/// <summary>
/// The weight gradient of <see cref="Conv1dOp"/>: dweight [Cout, Cin, K] = Σ over images and output positions of
/// dy[n, co, t] · act(x[n, ci, t·stride − padding + k·dilation]), act the convolution's fused input leaky-ReLU (or
/// none), applied as x is gathered. Inputs: x, dy. With dy as x and the activated input as dy it is also the weight
/// gradient of <see cref="ConvTranspose1dOp"/>.
/// </summary>
public sealed class Conv1dWeightGradientOp : Op<Conv1dWeightGradientOp>
{
    public Conv1dWeightGradientOp(int kernel, int stride, int padding, int dilation, float? inputLeakySlope)
    {
        if (kernel < 1) throw Invalid("conv1d_weight_grad", $"kernel size must be positive, got {kernel}");
        Forward = new Conv1dOp(stride, padding, dilation, inputLeakySlope, hasBias: false, hasResidual: false);
        Kernel = kernel;
    }

    /// <summary>The convolution this is the gradient of (its stride, padding, dilation and input activation).</summary>
    public Conv1dOp Forward { get; }
    public int Kernel { get; }
    public override string Name => "conv1d_weight_grad";

    /// <summary>The forward convolution's geometry.</summary>
    public Conv1dGeometry Geometry(TensorShape x, TensorShape dy) => Forward.Geometry(x, new TensorShape(dy[1], x[1], Kernel));

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ConvValidation.InputCount(Name, inputs, 2);
        var x = inputs[0].Shape;
        var dy = inputs[1].Shape;
        if (x.Rank != 3) throw Invalid(Name, $"input must be [N, Cin, L], got {x}");
        if (dy.Rank != 3) throw Invalid(Name, $"output gradient must be [N, Cout, Lout], got {dy}");
        var weight = new TensorDesc(DType.F32, new TensorShape(dy[1], x[1], Kernel));
        ConvValidation.MatchesForward(Name, Forward, inputs[0], weight, dy);
        return weight;
    }
}

/// <summary>The parts of the convolutions' gradient rules that do not depend on the convolution.</summary>
internal static class ConvGradients
{
    /// <summary>The fused epilogue's gradients: the bias gets dy summed over images and positions, the residual dy itself.</summary>
    public static void Epilogue(GradientContext context, int biasIndex, int residualIndex)
    {
        var g = context.Graph;
        var dy = context.OutputGradient;
        if (biasIndex >= 0 && context.NeedsGradient(biasIndex))
        {
            int channels = dy.Shape[1];
            var perChannel = new int[dy.Shape.Rank];
            Array.Fill(perChannel, 1);
            perChannel[1] = channels;
            context.AddGradient(biasIndex, g.Reshape(g.SumTo(dy, perChannel), channels));
        }
        if (residualIndex >= 0 && context.NeedsGradient(residualIndex)) context.AddGradient(residualIndex, dy);
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

    /// <summary>
    /// A gradient op's shapes: <paramref name="forward"/> must accept input <paramref name="x"/> and weight
    /// <paramref name="weight"/> and give an output of <paramref name="outputGradient"/>'s dims.
    /// </summary>
    public static void MatchesForward(string op, Op forward, TensorDesc x, TensorDesc weight, TensorShape outputGradient)
    {
        TensorDesc output;
        try
        {
            output = forward.InferOutput([x, weight]);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{op}: {e.Message}", e);
        }
        if (!output.Shape.SameDims(outputGradient))
            throw new ArgumentException(
                $"{op}: output gradient {outputGradient} does not match the {forward.Name} output {output.Shape} of input {x.Shape} and weight {weight.Shape}");
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

    /// <summary>dL/dx of conv2d for an input of <paramref name="height"/>×<paramref name="width"/>; see <see cref="Conv2dInputGradientOp"/>.</summary>
    public static Value Conv2dInputGradient(this GraphBuilder g, Value dy, Value weight, int height, int width, int stride = 1,
        int padding = 0) =>
        g.Apply(new Conv2dInputGradientOp(height, width, stride, padding), dy, weight);

    /// <summary>dL/dweight of conv2d with a kh×kw kernel; see <see cref="Conv2dWeightGradientOp"/>.</summary>
    public static Value Conv2dWeightGradient(this GraphBuilder g, Value x, Value dy, int kernelHeight, int kernelWidth,
        int stride = 1, int padding = 0) =>
        g.Apply(new Conv2dWeightGradientOp(kernelHeight, kernelWidth, stride, padding), x, dy);

    /// <summary>dL/d(activated x) of conv1d for an input of <paramref name="length"/>; see <see cref="Conv1dInputGradientOp"/>.</summary>
    public static Value Conv1dInputGradient(this GraphBuilder g, Value dy, Value weight, int length, int stride = 1,
        int padding = 0, int dilation = 1) =>
        g.Apply(new Conv1dInputGradientOp(length, stride, padding, dilation), dy, weight);

    /// <summary>dL/dweight of conv1d with a kernel of <paramref name="kernel"/> taps; see <see cref="Conv1dWeightGradientOp"/>.</summary>
    public static Value Conv1dWeightGradient(this GraphBuilder g, Value x, Value dy, int kernel, int stride = 1, int padding = 0,
        int dilation = 1, float? inputLeakySlope = null) =>
        g.Apply(new Conv1dWeightGradientOp(kernel, stride, padding, dilation, inputLeakySlope), x, dy);

    private static Value[] Inputs(Value x, Value weight, Value? bias, Value? residual)
    {
        var list = new List<Value>(4) { x, weight };
        if (bias is not null) list.Add(bias);
        if (residual is not null) list.Add(residual);
        return [.. list];
    }
}
