namespace MeLFusion.Native.Training;

/// <summary>Which of a model's tensors train; the rest stay frozen and get no gradient memory.</summary>
public sealed record ParameterSelection
{
    private ParameterSelection(string description, Func<string, bool> includes)
    {
        Description = description;
        Includes = includes;
    }

    public string Description { get; }
    public Func<string, bool> Includes { get; }

    /// <summary>Every tensor of the model.</summary>
    public static ParameterSelection All { get; } = new("all parameters", _ => true);

    /// <summary>Only the visual synapse's alpha scalars (MeLFusion's --train_only_alpha).</summary>
    public static ParameterSelection OnlyAlpha { get; } = new("visual-synapse alphas", n => n.EndsWith(".attn2.alpha", StringComparison.Ordinal));

    /// <summary>Tensors whose names start with one of <paramref name="prefixes"/>.</summary>
    public static ParameterSelection Prefixes(IReadOnlyList<string> prefixes) =>
        new($"tensors under {string.Join(", ", prefixes)}", n => prefixes.Any(p => n.StartsWith(p, StringComparison.Ordinal)));
}

/// <summary>How the learning rate moves over a run (transformers' schedules, after a linear warm-up).</summary>
public enum LearningRateScheduleKind
{
    Constant,
    Linear,
    Cosine,
}

/// <summary>The optimisation settings of a run (AdamW as torch.optim.AdamW, clipping as clip_grad_norm_).</summary>
public sealed record TrainingOptions
{
    public long Steps { get; init; } = 1000;
    public double LearningRate { get; init; } = 1e-4;
    public LearningRateScheduleKind Schedule { get; init; } = LearningRateScheduleKind.Constant;
    public long WarmupSteps { get; init; }
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float Epsilon { get; init; } = 1e-8f;
    public float WeightDecay { get; init; } = 1e-2f;
    /// <summary>Clip the global gradient norm to this (+∞: no clipping).</summary>
    public float MaxGradNorm { get; init; } = 1f;
    /// <summary>Micro-batches whose gradients add up before one optimizer step.</summary>
    public int AccumulationSteps { get; init; } = 1;
    /// <summary>Decay of the exponential moving average of the weights; null keeps none.</summary>
    public float? EmaDecay { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>Recompute each model block's activations in the backward pass instead of keeping them (less memory, one more forward).</summary>
    public bool GradientCheckpointing { get; init; }

    public LearningRateSchedule CreateSchedule() => Schedule switch
    {
        LearningRateScheduleKind.Constant => LearningRateSchedule.Constant(LearningRate, WarmupSteps),
        LearningRateScheduleKind.Linear => LearningRateSchedule.Linear(LearningRate, WarmupSteps, Steps),
        LearningRateScheduleKind.Cosine => LearningRateSchedule.Cosine(LearningRate, WarmupSteps, Steps),
        _ => throw new ArgumentOutOfRangeException(nameof(Schedule), Schedule, "unknown learning-rate schedule"),
    };

    public void Validate()
    {
        if (Steps <= 0) throw new ArgumentException($"training: steps must be positive, got {Steps}");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentException($"training: learning rate must be positive, got {LearningRate}");
        if (WarmupSteps < 0 || WarmupSteps > Steps) throw new ArgumentException($"training: warm-up steps must be in [0, {Steps}], got {WarmupSteps}");
        if (Beta1 is < 0 or >= 1 || Beta2 is < 0 or >= 1) throw new ArgumentException($"training: betas must be in [0, 1), got ({Beta1}, {Beta2})");
        if (!(Epsilon > 0)) throw new ArgumentException($"training: epsilon must be positive, got {Epsilon}");
        if (WeightDecay < 0) throw new ArgumentException($"training: weight decay must not be negative, got {WeightDecay}");
        if (!(MaxGradNorm > 0)) throw new ArgumentException($"training: max gradient norm must be positive, got {MaxGradNorm}");
        if (AccumulationSteps <= 0) throw new ArgumentException($"training: accumulation steps must be positive, got {AccumulationSteps}");
        if (EmaDecay is { } d && d is < 0 or >= 1) throw new ArgumentException($"training: EMA decay must be in [0, 1), got {d}");
    }
}
