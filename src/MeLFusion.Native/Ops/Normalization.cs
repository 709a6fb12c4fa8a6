using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// torch.nn.functional.group_norm on x [N, C, *spatial] (any number of spatial dims, including none): channels are
/// split into <see cref="Groups"/> groups, each normalised over its channels and positions with the biased variance,
/// then scaled and shifted per channel. <see cref="Silu"/> fuses a following SiLU into the same pass.
/// Inputs: x, then weight [C] if <see cref="HasWeight"/>, then bias [C] if <see cref="HasBias"/>.
/// </summary>
public sealed class GroupNormOp : Op<GroupNormOp>
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
}

/// <summary>
/// torch.nn.functional.layer_norm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias, biased variance.
/// Inputs: x [..., D], then weight [D] if <see cref="HasWeight"/>, then bias [D] if <see cref="HasBias"/>.
/// </summary>
public sealed class LayerNormOp(float epsilon, bool hasWeight, bool hasBias) : Op<LayerNormOp>
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
}

/// <summary>
/// T5-style RMS norm over the last dim: x * rsqrt(mean(x²) + eps) * weight, with no mean subtraction and no bias.
/// Inputs: x [..., D], weight [D].
/// </summary>
public sealed class RmsNormOp(float epsilon) : Op<RmsNormOp>
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
