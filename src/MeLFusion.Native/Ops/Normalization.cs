using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// torch.nn.functional.group_norm on x [N, C, *spatial] (any number of spatial dims, including none): channels are
/// split into <see cref="Groups"/> groups, each normalised over its channels and positions with the biased variance,
/// then scaled and shifted per channel. <see cref="Silu"/> fuses a following SiLU into the same pass.
/// Inputs: x, then weight [C] if <see cref="HasWeight"/>, then bias [C] if <see cref="HasBias"/>.
/// </summary>
public sealed class GroupNormOp : Op<GroupNormOp>, IDifferentiable
{
    public GroupNormOp(int groups, float epsilon, bool hasWeight, bool hasBias, bool silu)
    {
        if (groups <= 0) throw new ArgumentOutOfRangeException(nameof(groups), groups, "group_norm: groups must be positive");
        Groups = groups;
        Epsilon = epsilon;
        HasWeight = hasWeight;
        HasBias = hasBias;
        Silu = silu;
    }

    public int Groups { get; }
    public float Epsilon { get; }
    public bool HasWeight { get; }
    public bool HasBias { get; }
    public bool Silu { get; }

    public override string Name => "group_norm";
    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, NormalizationExtensions.InputNames(HasWeight, HasBias));
        var x = inputs[0];
        if (x.Shape.Rank < 2) throw Invalid(Name, $"x is {x}; expected [N, C, ...]");
        int channels = x.Shape[1];
        if (channels % Groups != 0) throw Invalid(Name, $"x {x} has {channels} channels, not divisible into {Groups} groups");
        for (int i = 1; i < inputs.Length; i++)
            FloatInputs.RequireVector(Name, inputs[i], i == 1 && HasWeight ? "weight" : "bias", channels, x);
        return new TensorDesc(DType.F32, new TensorShape(x.Shape.Dims.ToArray()));
    }

    /// <summary>dx by <see cref="GroupNormInputGradientOp"/>; dweight and dbias as the rows of one <see cref="GroupNormParamGradientOp"/>.</summary>
    public void Backward(GradientContext context) =>
        NormalizationGradients.Give(context, HasWeight, HasBias, new GroupNormInputGradientOp(this), new GroupNormParamGradientOp(this));
}

/// <summary>
/// torch.nn.functional.layer_norm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.
/// Inputs: x [..., D], then weight [D] if <see cref="HasWeight"/>, then bias [D] if <see cref="HasBias"/>.
/// </summary>
public sealed class LayerNormOp(float epsilon, bool hasWeight, bool hasBias) : Op<LayerNormOp>, IDifferentiable
{
    public float Epsilon { get; } = epsilon;
    public bool HasWeight { get; } = hasWeight;
    public bool HasBias { get; } = hasBias;

    public override string Name => "layer_norm";
    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, NormalizationExtensions.InputNames(HasWeight, HasBias));
        var x = inputs[0];
        if (x.Shape.Rank < 1) throw Invalid(Name, $"x is {x}; expected at least one dim");
        for (int i = 1; i < inputs.Length; i++)
            FloatInputs.RequireVector(Name, inputs[i], i == 1 && HasWeight ? "weight" : "bias", x.Shape[-1], x);
        return new TensorDesc(DType.F32, new TensorShape(x.Shape.Dims.ToArray()));
    }

    /// <summary>dx by <see cref="LayerNormInputGradientOp"/>; dweight and dbias as the rows of one <see cref="LayerNormParamGradientOp"/>.</summary>
    public void Backward(GradientContext context) =>
        NormalizationGradients.Give(context, HasWeight, HasBias, new LayerNormInputGradientOp(this), new LayerNormParamGradientOp(this));
}

/// <summary>
/// T5-style RMS norm over the last dim: x * rsqrt(mean(x²) + eps) * weight, with no mean subtraction and no bias.
/// Inputs: x [..., D], weight [D].
/// </summary>
public sealed class RmsNormOp(float epsilon) : Op<RmsNormOp>, IDifferentiable
{
    public float Epsilon { get; } = epsilon;

    public override string Name => "rms_norm";
    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x", "weight");
        var x = inputs[0];
        if (x.Shape.Rank < 1) throw Invalid(Name, $"x is {x}; expected at least one dim");
        FloatInputs.RequireVector(Name, inputs[1], "weight", x.Shape[-1], x);
        return new TensorDesc(DType.F32, new TensorShape(x.Shape.Dims.ToArray()));
    }

    /// <summary>dx by <see cref="RmsNormInputGradientOp"/>, dweight by <see cref="RmsNormWeightGradientOp"/>.</summary>
    public void Backward(GradientContext context)
    {
        Value[] inputs = [context.Input(0), context.Input(1), context.OutputGradient];
        if (context.NeedsGradient(0)) context.AddGradient(0, context.Graph.Apply(new RmsNormInputGradientOp(this), inputs));
        if (context.NeedsGradient(1)) context.AddGradient(1, context.Graph.Apply(new RmsNormWeightGradientOp(this), inputs));
    }
}

/// <summary>
/// dLoss/dx of group norm: inputs are those of <see cref="Forward"/> (x, weight?, bias?) followed by dy, the output's
/// gradient; output dx with x's dims. Per (batch item, group) of m elements, with x̂ the normalised x and dz the
/// gradient at x̂·weight + bias (dy, or dy through the fused SiLU, whose input is recomputed from weight and bias):
/// dx = rstd · (g - mean(g) - x̂ · mean(g·x̂)), g = dz · weight. Statistics are recomputed from x. May overwrite dy.
/// </summary>
public sealed class GroupNormInputGradientOp(GroupNormOp forward) : Op<GroupNormInputGradientOp>
{
    public GroupNormOp Forward { get; } = forward;

    public override string Name => "group_norm_input_grad";
    public override int InPlaceInput => NormalizationGradients.OutputGradientIndex(Forward.HasWeight, Forward.HasBias);

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs) => NormalizationGradients.Check(Name, Forward, inputs);
}

/// <summary>
/// dLoss/dweight and dLoss/dbias of group norm, packed as [2, C]: row 0 Σ dz·x̂, row 1 Σ dz over the batch and every
/// position of each channel (dz as in <see cref="GroupNormInputGradientOp"/>). Inputs as there. Sums per batch item
/// go to a workspace [N, 2, C] first, then are added over the batch in order.
/// </summary>
public sealed class GroupNormParamGradientOp(GroupNormOp forward) : Op<GroupNormParamGradientOp>
{
    public GroupNormOp Forward { get; } = forward;

    public override string Name => "group_norm_param_grad";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        NormalizationGradients.Check(Name, Forward, inputs);
        return new TensorDesc(DType.F32, new TensorShape(2, inputs[0].Shape[1]));
    }

    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        (long)inputs[0].Shape[0] * output.Shape.ElementCount * sizeof(float);
}

/// <summary>
/// dLoss/dx of layer norm: inputs are those of <see cref="Forward"/> (x, weight?, bias?) followed by dy; output dx with
/// x's dims. Per row of D: dx = rstd · (g - mean(g) - x̂ · mean(g·x̂)), g = dy · weight; statistics recomputed from x.
/// May overwrite dy.
/// </summary>
public sealed class LayerNormInputGradientOp(LayerNormOp forward) : Op<LayerNormInputGradientOp>
{
    public LayerNormOp Forward { get; } = forward;

    public override string Name => "layer_norm_input_grad";
    public override int InPlaceInput => NormalizationGradients.OutputGradientIndex(Forward.HasWeight, Forward.HasBias);

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs) => NormalizationGradients.Check(Name, Forward, inputs);
}

/// <summary>
/// dLoss/dweight and dLoss/dbias of layer norm, packed as [2, D]: Σ over rows of dy·x̂ and of dy. Inputs as in
/// <see cref="LayerNormInputGradientOp"/>. Each chunk of <see cref="NormalizationGradients.RowsPerChunk"/> rows sums
/// into a workspace row, then the chunks are added in order.
/// </summary>
public sealed class LayerNormParamGradientOp(LayerNormOp forward) : Op<LayerNormParamGradientOp>
{
    public LayerNormOp Forward { get; } = forward;

    public override string Name => "layer_norm_param_grad";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        NormalizationGradients.Check(Name, Forward, inputs);
        return new TensorDesc(DType.F32, new TensorShape(2, inputs[0].Shape[-1]));
    }

    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        NormalizationGradients.Chunks(inputs[0].Shape) * output.Shape.ElementCount * sizeof(float);
}

/// <summary>
/// dLoss/dx of RMS norm: inputs x, weight and dy; output dx with x's dims. Per row of D, with r = rsqrt(mean(x²) + eps)
/// and x̂ = x·r: dx = r · (g - x̂ · mean(g·x̂)), g = dy · weight. May overwrite dy.
/// </summary>
public sealed class RmsNormInputGradientOp(RmsNormOp forward) : Op<RmsNormInputGradientOp>
{
    public RmsNormOp Forward { get; } = forward;

    public override string Name => "rms_norm_input_grad";
    public override int InPlaceInput => 2;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs) => NormalizationGradients.Check(Name, Forward, inputs);
}

/// <summary>
/// dLoss/dweight of RMS norm, [D]: Σ over rows of dy·x̂. Inputs as in <see cref="RmsNormInputGradientOp"/>; chunks of
/// rows sum into a workspace as for <see cref="LayerNormParamGradientOp"/>.
/// </summary>
public sealed class RmsNormWeightGradientOp(RmsNormOp forward) : Op<RmsNormWeightGradientOp>
{
    public RmsNormOp Forward { get; } = forward;

    public override string Name => "rms_norm_weight_grad";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        NormalizationGradients.Check(Name, Forward, inputs);
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape[-1]));
    }

    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        NormalizationGradients.Chunks(inputs[0].Shape) * output.Shape.ElementCount * sizeof(float);
}

/// <summary>What the normalisation gradient ops share: input checks, the rule that wires them, the row chunking.</summary>
public static class NormalizationGradients
{
    /// <summary>
    /// Rows whose parameter-gradient terms one partial sum covers (layer and RMS norm). The split depends only on the
    /// shape, so the sums are the same on any number of cores and on every backend's schedule.
    /// </summary>
    public const int RowsPerChunk = 32;

    /// <summary>Partial sums of a row-normalisation parameter gradient: ceil(rows / <see cref="RowsPerChunk"/>), at least 1.</summary>
    public static long Chunks(TensorShape x)
    {
        long rows = x.Rank == 0 || x[-1] == 0 ? 0 : x.ElementCount / x[-1];
        return Math.Max(1, (rows + RowsPerChunk - 1) / RowsPerChunk);
    }

    /// <summary>Index of dy among a gradient op's inputs: after x and the optional weight and bias.</summary>
    internal static int OutputGradientIndex(bool hasWeight, bool hasBias) => 1 + (hasWeight ? 1 : 0) + (hasBias ? 1 : 0);

    /// <summary>
    /// Checks a gradient op's inputs: those of <paramref name="forward"/>, then dy with the forward output's dims; returns
    /// that output's desc (x's dims). Errors name the gradient op.
    /// </summary>
    internal static TensorDesc Check(string op, Op forward, ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length < 2)
            throw new ArgumentException($"{op}: expects the inputs of {forward.Name} followed by dy, got {inputs.Length} input(s)");
        TensorDesc y;
        try
        {
            y = forward.InferOutput(inputs[..^1]);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{op}: {e.Message}", e);
        }
        var dy = inputs[^1];
        if (dy.DType != DType.F32 || !dy.Shape.SameDims(y.Shape))
            throw new ArgumentException($"{op}: dy is {dy} but {forward.Name} of x {inputs[0]} gives {y}");
        return y;
    }

    /// <summary>
    /// The gradient rule of group and layer norm: dx from <paramref name="inputGradient"/>; dweight and dbias, when
    /// either is needed, as the rows of one [2, C] <paramref name="parameterGradient"/>. Both ops read the forward
    /// inputs followed by dy.
    /// </summary>
    internal static void Give(GradientContext context, bool hasWeight, bool hasBias, Op inputGradient, Op parameterGradient)
    {
        var g = context.Graph;
        Value[] Inputs() => [.. Enumerable.Range(0, context.InputCount).Select(context.Input), context.OutputGradient];
        if (context.NeedsGradient(0)) context.AddGradient(0, g.Apply(inputGradient, Inputs()));
        int weight = hasWeight ? 1 : -1, bias = hasBias ? (hasWeight ? 2 : 1) : -1;
        bool weightNeeded = weight > 0 && context.NeedsGradient(weight), biasNeeded = bias > 0 && context.NeedsGradient(bias);
        if (!weightNeeded && !biasNeeded) return;
        var packed = g.Apply(parameterGradient, Inputs());
        int length = packed.Shape[1];
        if (weightNeeded) context.AddGradient(weight, g.Reshape(g.Slice(packed, 0, 0, 1), length));
        if (biasNeeded) context.AddGradient(bias, g.Reshape(g.Slice(packed, 0, 1, 1), length));
    }
}

public static class NormalizationExtensions
{
    /// <summary>
    /// Group norm of x [N, C, ...] with optional per-channel <paramref name="weight"/> and <paramref name="bias"/> [C];
    /// <paramref name="silu"/> applies SiLU to the result in the same pass (diffusers' norm + nonlinearity pair).
    /// </summary>
    public static Value GroupNorm(this GraphBuilder g, Value x, Value? weight, Value? bias, int groups, float eps = 1e-5f, bool silu = false) =>
        g.Apply(new GroupNormOp(groups, eps, weight is not null, bias is not null, silu), Inputs(x, weight, bias));

    /// <summary>Layer norm of x over its last dim with optional <paramref name="weight"/> and <paramref name="bias"/> [D].</summary>
    public static Value LayerNorm(this GraphBuilder g, Value x, Value? weight, Value? bias, float eps = 1e-5f) =>
        g.Apply(new LayerNormOp(eps, weight is not null, bias is not null), Inputs(x, weight, bias));

    /// <summary>T5 RMS norm of x over its last dim, scaled by <paramref name="weight"/> [D].</summary>
    public static Value RmsNorm(this GraphBuilder g, Value x, Value weight, float eps = 1e-6f) =>
        g.Apply(new RmsNormOp(eps), x, weight);

    internal static string[] InputNames(bool hasWeight, bool hasBias) =>
        (hasWeight, hasBias) switch
        {
            (true, true) => ["x", "weight", "bias"],
            (true, false) => ["x", "weight"],
            (false, true) => ["x", "bias"],
            _ => ["x"],
        };

    private static Value[] Inputs(Value x, Value? weight, Value? bias) =>
        new[] { x, weight, bias }.OfType<Value>().ToArray();
}
