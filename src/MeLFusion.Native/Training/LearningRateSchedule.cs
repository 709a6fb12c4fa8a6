using MeLFusion.Native.Ops;

namespace MeLFusion.Native.Training;

/// <summary>
/// The learning rate of each optimizer step: a linear warm-up from 0 over <see cref="WarmupSteps"/>, then constant,
/// linear or cosine decay. The formulas are transformers' get_constant_schedule_with_warmup,
/// get_linear_schedule_with_warmup and get_cosine_schedule_with_warmup (a LambdaLR factor times the peak rate), and
/// <c>step</c> counts as their <c>current_step</c>: the optimizer steps taken before this one, 0 for the first.
/// </summary>
public abstract class LearningRateSchedule
{
    private LearningRateSchedule(double peakLearningRate, long warmupSteps)
    {
        if (!(peakLearningRate >= 0) || double.IsInfinity(peakLearningRate))
            throw new ArgumentOutOfRangeException(nameof(peakLearningRate), peakLearningRate, "learning rate schedule: the peak rate must be finite and >= 0");
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        PeakLearningRate = peakLearningRate;
        WarmupSteps = warmupSteps;
    }

    public double PeakLearningRate { get; }
    public long WarmupSteps { get; }

    /// <summary>The rate after warm-up, until the end: transformers' get_constant_schedule(_with_warmup).</summary>
    public static LearningRateSchedule Constant(double learningRate, long warmupSteps = 0) => new ConstantSchedule(learningRate, warmupSteps);

    /// <summary>Linear decay to 0 at <paramref name="trainingSteps"/>: get_linear_schedule_with_warmup.</summary>
    public static LearningRateSchedule Linear(double peakLearningRate, long warmupSteps, long trainingSteps) =>
        new LinearSchedule(peakLearningRate, warmupSteps, trainingSteps);

    /// <summary>
    /// Cosine decay over <paramref name="cycles"/> periods (0.5: from the peak down to 0 at <paramref name="trainingSteps"/>):
    /// get_cosine_schedule_with_warmup.
    /// </summary>
    public static LearningRateSchedule Cosine(double peakLearningRate, long warmupSteps, long trainingSteps, double cycles = 0.5) =>
        new CosineSchedule(peakLearningRate, warmupSteps, trainingSteps, cycles);

    /// <summary>The learning rate of optimizer step <paramref name="step"/> (0 for the first).</summary>
    public double LearningRate(long step) => PeakLearningRate * Factor(step);

    /// <summary>The multiplier of the peak rate at <paramref name="step"/>: transformers' lr_lambda(current_step).</summary>
    public double Factor(long step)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        return step < WarmupSteps ? (double)step / Math.Max(1, WarmupSteps) : AfterWarmup(step);
    }

    private protected abstract double AfterWarmup(long step);

    private static long RequireTrainingSteps(long trainingSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(trainingSteps);
        return trainingSteps;
    }

    private sealed class ConstantSchedule(double learningRate, long warmupSteps) : LearningRateSchedule(learningRate, warmupSteps)
    {
        private protected override double AfterWarmup(long step) => 1.0;
    }

    private sealed class LinearSchedule(double peak, long warmupSteps, long trainingSteps) : LearningRateSchedule(peak, warmupSteps)
    {
        private readonly long _trainingSteps = RequireTrainingSteps(trainingSteps);

        private protected override double AfterWarmup(long step) =>
            Math.Max(0.0, (double)(_trainingSteps - step) / Math.Max(1, _trainingSteps - WarmupSteps));
    }

    private sealed class CosineSchedule(double peak, long warmupSteps, long trainingSteps, double cycles) : LearningRateSchedule(peak, warmupSteps)
    {
        private readonly long _trainingSteps = RequireTrainingSteps(trainingSteps);
        private readonly double _cycles = double.IsFinite(cycles) ? cycles
            : throw new ArgumentOutOfRangeException(nameof(cycles), cycles, "cosine schedule: the number of cycles must be finite");

        private protected override double AfterWarmup(long step)
        {
            double progress = (double)(step - WarmupSteps) / Math.Max(1, _trainingSteps - WarmupSteps);
            return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * _cycles * 2.0 * progress)));
        }
    }
}

/// <summary>
/// The schedule input of <see cref="AdamWStepOp"/> for each optimizer step: (learning rate, 1 - β1^t, 1 - β2^t) with
/// t = step + 1, the step count torch's AdamW has after incrementing it. Bias corrections are formed in double, as
/// torch forms them in Python, then rounded to f32.
/// </summary>
public sealed class AdamWSchedule
{
    public AdamWSchedule(LearningRateSchedule learningRate, double beta1, double beta2)
    {
        ArgumentNullException.ThrowIfNull(learningRate);
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), beta1, "AdamW schedule: beta1 must lie in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), beta2, "AdamW schedule: beta2 must lie in [0, 1)");
        LearningRate = learningRate;
        Beta1 = beta1;
        Beta2 = beta2;
    }

    /// <summary>The schedule of <paramref name="step"/>'s betas.</summary>
    public AdamWSchedule(LearningRateSchedule learningRate, AdamWStepOp step) : this(learningRate, step.Beta1, step.Beta2) { }

    public LearningRateSchedule LearningRate { get; }
    public double Beta1 { get; }
    public double Beta2 { get; }

    /// <summary>Writes optimizer step <paramref name="step"/>'s (0 for the first) schedule into <paramref name="destination"/>.</summary>
    public void Write(long step, Span<float> destination)
    {
        if (destination.Length != AdamWStepOp.ScheduleLength)
            throw new ArgumentException($"AdamW schedule: the destination holds {destination.Length} values, not {AdamWStepOp.ScheduleLength}", nameof(destination));
        double t = step + 1.0;
        destination[0] = (float)LearningRate.LearningRate(step);
        destination[1] = (float)(1 - Math.Pow(Beta1, t));
        destination[2] = (float)(1 - Math.Pow(Beta2, t));
    }

    /// <summary>Optimizer step <paramref name="step"/>'s (0 for the first) schedule, for a graph input of [3].</summary>
    public float[] Values(long step)
    {
        var values = new float[AdamWStepOp.ScheduleLength];
        Write(step, values);
        return values;
    }
}
