namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>
/// Ancestral DDPM sampling (Ho et al. 2020, eq. 7) with diffusers' DDPMScheduler semantics for variance_type
/// fixed_small and clip_sample false: from t to t' = t − T // N,
/// x_t' = [√ᾱ_t' β'/(1 − ᾱ_t)] x̂₀ + [√α' (1 − ᾱ_t')/(1 − ᾱ_t)] x_t + σ z, with α' = ᾱ_t/ᾱ_t', β' = 1 − α',
/// σ² = max((1 − ᾱ_t')/(1 − ᾱ_t) · β', 1e-20), ᾱ_t' = 1 for t' &lt; 0, and no noise (none drawn) at t = 0.
/// </summary>
/// <remarks>
/// MeLFusion samples music with this scheduler under SD 2.1's config. The diffusers release it vendors (0.15) builds
/// DDPM timesteps without steps_offset (200 steps → 995, …, 0); newer releases add it. Pass the offset you need.
/// </remarks>
public sealed class DdpmScheduler(NoiseSchedule schedule, PredictionType prediction,
    TimestepSpacing spacing = TimestepSpacing.Leading, int stepsOffset = 0)
    : SchedulerBase(schedule, prediction, spacing, stepsOffset)
{
    protected override int[] MakeTimesteps(int inferenceSteps) =>
        TimestepGrid.Descending(Spacing, Schedule.TrainTimesteps, inferenceSteps, StepsOffset);

    public override void Step(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output, StepNoise noise = default)
    {
        int previous = timestep - CheckStep(modelOutput, timestep, sample, output);
        double alphaCumprod = Schedule.AlphaCumprod(timestep);
        double alphaCumprodPrevious = previous >= 0 ? Schedule.AlphaCumprod(previous) : 1.0;
        double betaCumprod = 1 - alphaCumprod, betaCumprodPrevious = 1 - alphaCumprodPrevious;
        double stepAlpha = alphaCumprod / alphaCumprodPrevious, stepBeta = 1 - stepAlpha;

        var predicted = PredictionCoefficients.At(Prediction, alphaCumprod);
        double originalWeight = Math.Sqrt(alphaCumprodPrevious) * stepBeta / betaCumprod;
        double sampleWeight = Math.Sqrt(stepAlpha) * betaCumprodPrevious / betaCumprod;
        Affine(sample, originalWeight * predicted.X0FromSample + sampleWeight,
            modelOutput, originalWeight * predicted.X0FromOutput, output);

        if (timestep > 0)
        {
            double variance = Math.Max(betaCumprodPrevious / betaCumprod * stepBeta, 1e-20);
            noise.AddScaled(output, (float)Math.Sqrt(variance), nameof(DdpmScheduler), timestep);
        }
    }
}
