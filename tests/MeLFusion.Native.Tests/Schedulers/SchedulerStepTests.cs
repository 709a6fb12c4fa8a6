using MeLFusion.Native.Pipelines.Schedulers;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Schedulers;

public class SchedulerStepTests
{
    // Tolerances. The reference is diffusers' arithmetic: f32 tables from torch and f32 scalar ops, each rounding.
    // Ours: f32 tables agreeing to 2e-6 relative in ᾱ, coefficients in f64, one rounding per element. Measured
    // worst: 5.5e-6 relative for a single step (DDIM, sample prediction, t = 1: ε̂ = (x − √ᾱ x̂₀)/√(1 − ᾱ_1) amplifies
    // f32 rounding ~34×), 1.2e-6 after ten-step loops (the fake model contracts errors). Bounds: 2e-5 and 1e-5,
    // absolute and relative, well under any wrong coefficient (those move outputs by 1e-3 or more).
    private const float StepTolerance = 2e-5f, LoopTolerance = 1e-5f;

    public static TheoryData<string> StepCases() => Cases("step");
    public static TheoryData<string> LoopCases() => Cases("loop");

    [Theory]
    [MemberData(nameof(StepCases))]
    public void SingleStepMatchesReference(string @case)
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var scheduler = SchedulerFixture.Create(fixture, @case);
        var sample = fixture.F32("inputs.sample");
        var output = new float[sample.Length];
        scheduler.Step(fixture.F32("inputs.model_output"), fixture.MetaInt($"{@case}.timestep"), sample, output,
            new StepNoise(fixture.F32("inputs.noise")));
        Check.Close(fixture.F32($"{@case}.expected"), output, StepTolerance, StepTolerance, Describe(fixture, @case));
    }

    [Theory]
    [MemberData(nameof(LoopCases))]
    public void SamplingLoopMatchesReference(string @case)
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var scheduler = SchedulerFixture.Create(fixture, @case);
        var constant = fixture.F32("loop.c");
        var x = fixture.F32("loop.x_init");
        var noise = fixture.Has($"{@case}.noise") ? fixture.F32($"{@case}.noise") : null;
        var modelOutput = new float[x.Length];
        int step = 0;
        foreach (int t in scheduler.Timesteps)
        {
            scheduler.ScaleModelInput(x, t);
            FakeModel(x, constant, modelOutput);
            var stepNoise = noise is null ? default : new StepNoise(noise.AsSpan(step * x.Length, x.Length));
            scheduler.Step(modelOutput, t, x, x, stepNoise); // in place, as a pipeline runs it
            step++;
        }
        Check.Close(fixture.F32($"{@case}.expected"), x, LoopTolerance, LoopTolerance, Describe(fixture, @case));
    }

    [Theory]
    [InlineData("epsilon")]
    [InlineData("v_prediction")]
    public void DdimInversionThenSamplingMatchesReference(string prediction)
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var type = SchedulerFixture.Prediction(prediction);
        var schedule = NoiseSchedule.StableDiffusion21;
        var inverse = new DdimInverseScheduler(schedule, type, TimestepSpacing.Leading, stepsOffset: 1, setAlphaToOne: false);
        var ddim = new DdimScheduler(schedule, type, TimestepSpacing.Leading, stepsOffset: 1, setAlphaToOne: false);
        inverse.SetTimesteps(10);
        ddim.SetTimesteps(10);
        var constant = fixture.F32("loop.c");
        var x = fixture.F32($"inversion_{prediction}.x0");
        var modelOutput = new float[x.Length];
        foreach (int t in inverse.Timesteps)
        {
            FakeModel(x, constant, modelOutput);
            inverse.Step(modelOutput, t, x, x);
        }
        Check.Close(fixture.F32($"inversion_{prediction}.inverted"), x, LoopTolerance, LoopTolerance, $"{prediction} inverted latent");
        foreach (int t in ddim.Timesteps)
        {
            FakeModel(x, constant, modelOutput);
            ddim.Step(modelOutput, t, x, x);
        }
        Check.Close(fixture.F32($"inversion_{prediction}.reconstructed"), x, LoopTolerance, LoopTolerance, $"{prediction} reconstruction");
    }

    /// <summary>
    /// With a model output that does not depend on x (a constant ε), each DDIM step is the exact algebraic inverse of
    /// the inversion step at the same timestep, so inverting then sampling returns the latent up to f32 rounding.
    /// </summary>
    [Theory]
    [InlineData(false, TimestepSpacing.Leading)]
    [InlineData(true, TimestepSpacing.Trailing)]
    public void DdimUndoesInversionForAConstantNoisePrediction(bool setAlphaToOne, TimestepSpacing spacing)
    {
        var schedule = NoiseSchedule.StableDiffusion21;
        var inverse = new DdimInverseScheduler(schedule, PredictionType.Epsilon, spacing, stepsOffset: spacing == TimestepSpacing.Leading ? 1 : 0, setAlphaToOne);
        var ddim = new DdimScheduler(schedule, PredictionType.Epsilon, spacing, stepsOffset: spacing == TimestepSpacing.Leading ? 1 : 0, setAlphaToOne);
        inverse.SetTimesteps(25);
        ddim.SetTimesteps(25);
        if (spacing == TimestepSpacing.Leading) Assert.Equal(inverse.Timesteps.ToArray().Reverse(), ddim.Timesteps.ToArray());
        var latent = new float[77];
        var epsilon = new float[77];
        Philox.FillNormal(5, 0, latent);
        Philox.FillNormal(6, 0, epsilon);
        var x = (float[])latent.Clone();
        foreach (int t in inverse.Timesteps) inverse.Step(epsilon, t, x, x);
        Assert.True(Check.MaxAbsDiff(latent, x) > 0.5f, "inversion should move the latent");
        foreach (int t in ddim.Timesteps) ddim.Step(epsilon, t, x, x);
        // 50 f32 roundings, amplified up to 1/√ᾱ ≈ 14 near t = 999: measured 4e-6; 2e-5 bounds it.
        Check.Close(latent, x, 2e-5f, 2e-5f, "DDIM(inversion(x))");
    }

    [Fact]
    public void GeneratorNoiseEqualsExplicitNoiseAndIsDrawnOnlyWhenNeeded()
    {
        var ddpm = SchedulerPresets.MeLFusionMusicDdpm();
        ddpm.SetTimesteps(20);
        var sample = new float[41];
        var modelOutput = new float[41];
        Philox.FillNormal(1, 0, sample);
        Philox.FillNormal(2, 0, modelOutput);

        var noise = new float[41];
        Philox.FillNormal(99, 41, noise);
        var expected = new float[41];
        ddpm.Step(modelOutput, 950, sample, expected, new StepNoise(noise));
        var generator = new PhiloxGenerator(99, 41);
        var actual = new float[41];
        ddpm.Step(modelOutput, 950, sample, actual, new StepNoise(generator));
        Assert.Equal(expected, actual);
        Assert.Equal(82UL, generator.Offset);

        ddpm.Step(modelOutput, 0, sample, actual, new StepNoise(generator)); // t = 0 adds no noise, draws none
        Assert.Equal(82UL, generator.Offset);
        ddpm.Step(modelOutput, 0, sample, expected); // and needs none
        Assert.Equal(expected, actual);

        var missing = Assert.Throws<ArgumentException>(() => ddpm.Step(modelOutput, 950, sample, actual));
        Assert.Contains("t=950", missing.Message);
        var wrongLength = Assert.Throws<ArgumentException>(() => ddpm.Step(modelOutput, 950, sample, actual, new StepNoise(new float[40])));
        Assert.Contains("40", wrongLength.Message);

        var ddim = SchedulerPresets.StableDiffusion21Ddim(); // η = 0: deterministic, consumes nothing
        ddim.SetTimesteps(20);
        ddim.Step(modelOutput, 951, sample, actual, new StepNoise(generator));
        Assert.Equal(82UL, generator.Offset);
    }

    [Fact]
    public void DdimWithUnitEtaHasDdpmPosteriorVariance()
    {
        // η = 1 makes DDIM's σ² the DDPM posterior variance, so with the same noise the two agree (up to rounding).
        var schedule = NoiseSchedule.StableDiffusion21;
        var ddpm = new DdpmScheduler(schedule, PredictionType.VPrediction);
        var ddim = new DdimScheduler(schedule, PredictionType.VPrediction, eta: 1);
        ddpm.SetTimesteps(50);
        ddim.SetTimesteps(50);
        var sample = new float[33];
        var modelOutput = new float[33];
        var noise = new float[33];
        Philox.FillNormal(3, 0, sample);
        Philox.FillNormal(4, 0, modelOutput);
        Philox.FillNormal(5, 0, noise);
        var fromDdpm = new float[33];
        var fromDdim = new float[33];
        ddpm.Step(modelOutput, 500, sample, fromDdpm, new StepNoise(noise));
        ddim.Step(modelOutput, 500, sample, fromDdim, new StepNoise(noise));
        Check.Close(fromDdpm, fromDdim, 1e-5f, 1e-5f, "DDIM(η=1) vs DDPM");
    }

    [Fact]
    public void StepsDoNotAllocate()
    {
        var schedule = NoiseSchedule.StableDiffusion21;
        IScheduler[] schedulers =
        [
            new DdpmScheduler(schedule, PredictionType.VPrediction),
            new DdimScheduler(schedule, PredictionType.VPrediction, eta: 0.5f),
            new DdimInverseScheduler(schedule, PredictionType.Epsilon),
            new DpmSolverMultistepScheduler(schedule, PredictionType.VPrediction),
        ];
        var x = new float[4 * 64 * 64];
        var m = new float[x.Length];
        var generator = new PhiloxGenerator(7);
        foreach (var scheduler in schedulers)
        {
            for (int run = 0; run < 2; run++) // the first run sizes DPM-Solver's history and warms the JIT
            {
                scheduler.SetTimesteps(12);
                long before = GC.GetAllocatedBytesForCurrentThread();
                foreach (int t in scheduler.Timesteps) scheduler.Step(m, t, x, x, new StepNoise(generator));
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                if (run == 1) Assert.True(allocated == 0, $"{scheduler.GetType().Name}: {allocated} bytes allocated by 12 steps");
            }
        }
    }

    [Fact]
    public void DpmSolverEnforcesStepOrder()
    {
        var dpm = SchedulerPresets.StableDiffusion21DpmSolver();
        var x = new float[8];
        var m = new float[8];
        var error = Assert.Throws<InvalidOperationException>(() => dpm.Step(m, 999, x, x));
        Assert.Contains("SetTimesteps", error.Message);
        dpm.SetTimesteps(5);
        var timesteps = dpm.Timesteps.ToArray();
        Assert.Throws<ArgumentException>(() => dpm.Step(m, 998, x, x)); // not in the schedule
        dpm.Step(m, timesteps[0], x, x);
        var order = Assert.Throws<ArgumentException>(() => dpm.Step(m, timesteps[2], x, x));
        Assert.Contains($"expects timestep {timesteps[1]}", order.Message);
        var resized = Assert.Throws<ArgumentException>(() => dpm.Step(new float[9], timesteps[1], new float[9], new float[9]));
        Assert.Contains("mid-run", resized.Message);
        foreach (int t in timesteps.Skip(1)) dpm.Step(m, t, x, x);
        Assert.Throws<InvalidOperationException>(() => dpm.Step(m, timesteps[^1], x, x));
        dpm.SetTimesteps(5); // a new run starts over
        dpm.Step(m, timesteps[0], x, x);
    }

    [Fact]
    public void StepArgumentsAreChecked()
    {
        var ddim = SchedulerPresets.StableDiffusion21Ddim();
        var x = new float[8];
        Assert.Throws<InvalidOperationException>(() => ddim.Step(x, 500, x, x));
        ddim.SetTimesteps(10);
        var lengths = Assert.Throws<ArgumentException>(() => ddim.Step(new float[7], 500, x, x));
        Assert.Contains("DdimScheduler.Step", lengths.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.Step(x, 1000, x, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.Step(x, -1, x, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DdimScheduler(NoiseSchedule.StableDiffusion21, PredictionType.Epsilon, eta: -0.5f));
    }

    // CFG in f32 in diffusers' operation order: bit-identical.
    [Fact]
    public void GuidanceMatchesReference()
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var uncond = fixture.F32("cfg.uncond");
        var output = new float[uncond.Length];
        ClassifierFreeGuidance.Apply(uncond, fixture.F32("cfg.cond"), fixture.MetaFloat("cfg.scale"), output);
        Assert.Equal(fixture.F32("cfg.expected"), output);
        Assert.Throws<ArgumentException>(() => ClassifierFreeGuidance.Apply(uncond, new float[3], 3, output));
    }

    /// <summary>The reference's model: m(x) = 0.1·x + c in f32, as torch evaluates it.</summary>
    private static void FakeModel(ReadOnlySpan<float> x, ReadOnlySpan<float> constant, Span<float> output)
    {
        for (int i = 0; i < x.Length; i++) output[i] = 0.1f * x[i] + constant[i];
    }

    private static TheoryData<string> Cases(string prefix)
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var data = new TheoryData<string>();
        foreach (var @case in SchedulerFixture.CasesWithPrefix(fixture, prefix)) data.Add(@case);
        return data;
    }

    private static string Describe(Fixture fixture, string @case)
    {
        string Param(string name) => fixture.Meta($"{@case}.{name}");
        string timestep = @case.StartsWith("step", StringComparison.Ordinal) ? $" t={Param("timestep")}" : "";
        return $"{@case}: {Param("scheduler")} {Param("prediction")} {Param("spacing")} offset {Param("offset")} " +
               $"N={Param("steps")}{timestep} eta {Param("eta")} alpha_to_one {Param("set_alpha_to_one")} final {Param("final_sigma")}";
    }
}
