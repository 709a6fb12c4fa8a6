namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>
/// DDIM sampling (Song et al. 2021, eq. 12) with diffusers' DDIMScheduler semantics (clip_sample false, no
/// thresholding): from t to t' = t − T // N,
/// x_t' = √ᾱ_t' x̂₀ + √(1 − ᾱ_t' − σ²) ε̂ + σ z, σ = η √((1 − ᾱ_t')/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_t')),
/// with ᾱ_t' for t' &lt; 0 the final ᾱ: 1 with set_alpha_to_one, else ᾱ_0 (SD 2.1). Noise is drawn only when η &gt; 0.
/// </summary>
public sealed class DdimScheduler : SchedulerBase
{
    private readonly double _finalAlphaCumprod;

    public DdimScheduler(NoiseSchedule schedule, PredictionType prediction, TimestepSpacing spacing = TimestepSpacing.Leading,
        int stepsOffset = 0, bool setAlphaToOne = true, float eta = 0)
        : base(schedule, prediction, spacing, stepsOffset)
    {
        if (!(eta >= 0)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "DDIM η must be >= 0");
        Eta = eta;
        SetAlphaToOne = setAlphaToOne;
        _finalAlphaCumprod = setAlphaToOne ? 1.0 : schedule.AlphaCumprod(0);
    }

    /// <summary>Noise weight: 0 is deterministic DDIM, 1 matches DDPM's posterior variance.</summary>
    public float Eta { get; }
    public bool SetAlphaToOne { get; }

    protected override int[] MakeTimesteps(int inferenceSteps) =>
        TimestepGrid.Descending(Spacing, Schedule.TrainTimesteps, inferenceSteps, StepsOffset);

    public override void Step(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output, StepNoise noise = default)
    {
        int previous = timestep - CheckStep(modelOutput, timestep, sample, output);
        double alphaCumprod = Schedule.AlphaCumprod(timestep);
        double alphaCumprodPrevious = previous >= 0 ? Schedule.AlphaCumprod(previous) : _finalAlphaCumprod;
        double variance = (1 - alphaCumprodPrevious) / (1 - alphaCumprod) * (1 - alphaCumprod / alphaCumprodPrevious);
        double deviation = Eta * Math.Sqrt(variance);

        var predicted = PredictionCoefficients.At(Prediction, alphaCumprod);
        double originalWeight = Math.Sqrt(alphaCumprodPrevious);
        double directionWeight = Math.Sqrt(1 - alphaCumprodPrevious - deviation * deviation);
        Affine(sample, originalWeight * predicted.X0FromSample + directionWeight * predicted.EpsFromSample,
            modelOutput, originalWeight * predicted.X0FromOutput + directionWeight * predicted.EpsFromOutput, output);

        if (Eta > 0) noise.AddScaled(output, (float)deviation, nameof(DdimScheduler), timestep);
    }
}
