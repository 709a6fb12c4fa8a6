namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>
/// The scheduler configurations MeLFusion uses, all from SD 2.1's scheduler_config.json (spec §2.7): scaled_linear
/// 0.00085 → 0.012, T = 1000, v_prediction, clip_sample false, set_alpha_to_one false, steps_offset 1, leading spacing.
/// </summary>
public static class SchedulerPresets
{
    /// <summary>
    /// The music sampler: DDPM (fixed_small) under the SD 2.1 config as MeLFusion's vendored diffusers 0.15 runs it,
    /// whose DDPM ignores steps_offset (200 steps → 995, 990, …, 0; spec §2.7).
    /// </summary>
    public static DdpmScheduler MeLFusionMusicDdpm() =>
        new(NoiseSchedule.StableDiffusion21, PredictionType.VPrediction, TimestepSpacing.Leading, stepsOffset: 0);

    /// <summary>SD 2.1's DDIM (the image branch; η = 0 unless given).</summary>
    public static DdimScheduler StableDiffusion21Ddim(float eta = 0) =>
        new(NoiseSchedule.StableDiffusion21, PredictionType.VPrediction, TimestepSpacing.Leading, stepsOffset: 1, setAlphaToOne: false, eta);

    /// <summary>DDIM inversion of an image latent, mirroring <see cref="StableDiffusion21Ddim"/>'s levels.</summary>
    public static DdimInverseScheduler StableDiffusion21DdimInverse() =>
        new(NoiseSchedule.StableDiffusion21, PredictionType.VPrediction, TimestepSpacing.Leading, stepsOffset: 1, setAlphaToOne: false);

    /// <summary>DPM-Solver++(2M) from the SD 2.1 config (diffusers' from_config: linspace spacing, zero final sigma).</summary>
    public static DpmSolverMultistepScheduler StableDiffusion21DpmSolver() =>
        new(NoiseSchedule.StableDiffusion21, PredictionType.VPrediction, TimestepSpacing.Linspace, stepsOffset: 1);
}
