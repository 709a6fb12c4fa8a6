namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>
/// DDIM inversion (η = 0 DDIM run backwards, clean → noisy), with current diffusers' DDIMInverseScheduler semantics:
/// timesteps ascend (leading: i·(T // N) + offset), and the step at t moves x from the noise level of
/// s = min(t − T // N, T − 1) to that of t: x_t = √ᾱ_t x̂₀ + √(1 − ᾱ_t) ε̂, with x̂₀, ε̂ from the model output at ᾱ_s,
/// and ᾱ_s for s &lt; 0 the initial ᾱ: 1 with set_alpha_to_one, else ᾱ_0.
/// </summary>
/// <remarks>
/// These are exactly the level pairs a <see cref="DdimScheduler"/> with the same N, spacing, offset and
/// set_alpha_to_one visits in reverse, so with equal model outputs a sampling step undoes an inversion step.
/// (diffusers 0.15, which MeLFusion vendors, stepped from t to t + T // N instead; spec §3.3.)
/// diffusers offers leading and trailing spacing only, and so does this class.
/// </remarks>
public sealed class DdimInverseScheduler : SchedulerBase
{
    private readonly double _initialAlphaCumprod;

    public DdimInverseScheduler(NoiseSchedule schedule, PredictionType prediction, TimestepSpacing spacing = TimestepSpacing.Leading,
        int stepsOffset = 0, bool setAlphaToOne = true)
        : base(schedule, prediction, spacing, stepsOffset)
    {
        if (spacing == TimestepSpacing.Linspace)
            throw new ArgumentException("DdimInverseScheduler: timestep spacing must be leading or trailing (as in diffusers)", nameof(spacing));
        SetAlphaToOne = setAlphaToOne;
        _initialAlphaCumprod = setAlphaToOne ? 1.0 : schedule.AlphaCumprod(0);
    }

    public bool SetAlphaToOne { get; }

    protected override int[] MakeTimesteps(int inferenceSteps)
    {
        var timesteps = TimestepGrid.Descending(Spacing, Schedule.TrainTimesteps, inferenceSteps, StepsOffset);
        Array.Reverse(timesteps);
        return timesteps;
    }

    public override void Step(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output, StepNoise noise = default)
    {
        int source = Math.Min(timestep - CheckStep(modelOutput, timestep, sample, output), Schedule.TrainTimesteps - 1);
        double alphaCumprodSource = source >= 0 ? Schedule.AlphaCumprod(source) : _initialAlphaCumprod;
        double alphaCumprodTarget = Schedule.AlphaCumprod(timestep);

        var predicted = PredictionCoefficients.At(Prediction, alphaCumprodSource);
        double originalWeight = Math.Sqrt(alphaCumprodTarget), directionWeight = Math.Sqrt(1 - alphaCumprodTarget);
        Affine(sample, originalWeight * predicted.X0FromSample + directionWeight * predicted.EpsFromSample,
            modelOutput, originalWeight * predicted.X0FromOutput + directionWeight * predicted.EpsFromOutput, output);
    }
}
