namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>What the schedulers share: the schedule, the prediction type, the timestep list and the forward process.</summary>
public abstract class SchedulerBase : IScheduler
{
    private int[] _timesteps = [];

    protected SchedulerBase(NoiseSchedule schedule, PredictionType prediction, TimestepSpacing spacing, int stepsOffset)
    {
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        if (!Enum.IsDefined(prediction)) throw new ArgumentOutOfRangeException(nameof(prediction), prediction, "unknown prediction type");
        if (!Enum.IsDefined(spacing)) throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "unknown timestep spacing");
        if (stepsOffset < 0) throw new ArgumentOutOfRangeException(nameof(stepsOffset), stepsOffset, "steps_offset must be >= 0");
        Prediction = prediction;
        Spacing = spacing;
        StepsOffset = stepsOffset;
    }

    public NoiseSchedule Schedule { get; }
    public PredictionType Prediction { get; }
    public TimestepSpacing Spacing { get; }
    public int StepsOffset { get; }
    public ReadOnlySpan<int> Timesteps => _timesteps;
    public float InitNoiseSigma => 1f;

    /// <summary>N of the last <see cref="SetTimesteps"/>; 0 before.</summary>
    public int InferenceSteps => _timesteps.Length;

    public void SetTimesteps(int inferenceSteps)
    {
        _timesteps = MakeTimesteps(inferenceSteps);
        OnTimestepsSet();
    }

    public void ScaleModelInput(Span<float> sample, int timestep) => Schedule.CheckTimestep(timestep);

    public abstract void Step(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output, StepNoise noise = default);

    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int timestep, Span<float> output) =>
        Schedule.AddNoise(original, noise, timestep, output);

    public void GetVelocity(ReadOnlySpan<float> sample, ReadOnlySpan<float> noise, int timestep, Span<float> output) =>
        Schedule.GetVelocity(sample, noise, timestep, output);

    /// <summary>The timestep list for N inference steps, in the order the model is run.</summary>
    protected abstract int[] MakeTimesteps(int inferenceSteps);

    /// <summary>Resets per-run state after new timesteps.</summary>
    protected virtual void OnTimestepsSet() { }

    /// <summary>Checks a step's arguments; returns the training-step stride T // N.</summary>
    protected int CheckStep(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output)
    {
        if (_timesteps.Length == 0) throw new InvalidOperationException($"{GetType().Name}: call SetTimesteps before Step");
        if (modelOutput.Length != sample.Length || output.Length != sample.Length)
            NoiseSchedule.CheckLengths($"{GetType().Name}.Step", sample.Length, modelOutput.Length, output.Length);
        Schedule.CheckTimestep(timestep);
        return Schedule.TrainTimesteps / _timesteps.Length;
    }

    /// <summary>output = a·sample + b·modelOutput, in f64 per element, rounded once.</summary>
    protected static void Affine(ReadOnlySpan<float> sample, double a, ReadOnlySpan<float> modelOutput, double b, Span<float> output) =>
        NoiseSchedule.Combine(sample, a, modelOutput, b, output);
}
