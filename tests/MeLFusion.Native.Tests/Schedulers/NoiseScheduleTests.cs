using MeLFusion.Native.Pipelines.Schedulers;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Schedulers;

public class NoiseScheduleTests
{
    // torch builds β with an f32 linspace whose rounding depends on the CPU's vector width; ours is f64 rounded once.
    // β agrees to an ulp or two (rtol 3e-7); ᾱ, a product of up to 1000 such factors, to 2e-6 relative.
    [Theory]
    [InlineData("linear", BetaSchedule.Linear)]
    [InlineData("scaled_linear", BetaSchedule.ScaledLinear)]
    [InlineData("squaredcos_cap_v2", BetaSchedule.SquaredCosCapV2)]
    public void TablesMatchTorch(string kind, BetaSchedule schedule)
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var noise = new NoiseSchedule(schedule, 1000, SchedulerFixture.MetaDouble(fixture, $"sched_{kind}.start"),
            SchedulerFixture.MetaDouble(fixture, $"sched_{kind}.end"));
        Check.Close(fixture.F32($"sched_{kind}.betas"), noise.Betas, 0, 3e-7f, $"{kind} betas");
        Check.Close(fixture.F32($"sched_{kind}.alphas_cumprod"), noise.AlphasCumprod, 0, 2e-6f, $"{kind} alphas_cumprod");
    }

    [Fact]
    public void StableDiffusion21IsScaledLinear()
    {
        var sd = NoiseSchedule.StableDiffusion21;
        Assert.Equal(1000, sd.TrainTimesteps);
        Assert.Equal(0.00085f, sd.Betas[0], 1e-9f);
        Assert.Equal(0.012f, sd.Betas[999], 1e-9f);
        Assert.Equal(1 - 0.00085, sd.AlphaCumprod(0), 1e-7); // an f32 table entry
    }

    // √ᾱ and √(1 − ᾱ) from tables that agree to 2e-6 relative, inputs ~N(0, 1): 1e-5 absolute and relative.
    [Theory]
    [InlineData(0)]
    [InlineData(377)]
    [InlineData(999)]
    public void ForwardNoisingAndVelocityMatchTorch(int timestep)
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var original = fixture.F32("forward.original");
        var noise = fixture.F32("inputs.noise");
        IScheduler scheduler = new DdpmScheduler(NoiseSchedule.StableDiffusion21, PredictionType.VPrediction);
        var output = new float[original.Length];
        scheduler.AddNoise(original, noise, timestep, output);
        Check.Close(fixture.F32($"forward_{timestep}.noisy"), output, 1e-5f, 1e-5f, $"add_noise t={timestep}");
        scheduler.GetVelocity(original, noise, timestep, output);
        Check.Close(fixture.F32($"forward_{timestep}.velocity"), output, 1e-5f, 1e-5f, $"velocity t={timestep}");
    }

    // Tango's compute_snr in f32 then min(snr, 5)/snr; ours in f64 from the f32 table. At t = 0 SNR ~ 1175, where
    // 1 − ᾱ loses digits in f32: 2e-5 relative.
    [Fact]
    public void MinSnrWeightsMatchTango()
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        var timesteps = fixture.I64("min_snr.timesteps");
        var weights = timesteps.Select(t => NoiseSchedule.StableDiffusion21.MinSnrWeight((int)t, 5)).ToArray();
        Check.Close(fixture.F32("min_snr.weights"), weights, 0, 2e-5f, "Min-SNR-5 weights");
        Assert.Equal(1f, NoiseSchedule.StableDiffusion21.MinSnrWeight(999, 5)); // SNR < 5: weight 1
    }

    [Fact]
    public void BadArgumentsAreRejectedClearly()
    {
        var sd = NoiseSchedule.StableDiffusion21;
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => sd.AlphaCumprod(1000));
        Assert.Contains("[0, 1000)", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => sd.MinSnrWeight(10, 0));
        var mismatch = Assert.Throws<ArgumentException>(() => sd.AddNoise(new float[4], new float[5], 10, new float[4]));
        Assert.Contains("AddNoise", mismatch.Message);
        Assert.Contains("4, 5 and 4", mismatch.Message);
        Assert.Throws<ArgumentException>(() => new NoiseSchedule(BetaSchedule.Linear, 1000, 0.02, 0.0001));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NoiseSchedule(BetaSchedule.Linear, 1));
    }
}
