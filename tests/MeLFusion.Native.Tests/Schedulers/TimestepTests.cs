using MeLFusion.Native.Pipelines.Schedulers;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Schedulers;

public class TimestepTests
{
    /// <summary>Every grid of the fixture (4 schedulers x spacings x 1..999 steps x offsets) must match exactly.</summary>
    [Fact]
    public void GridsMatchDiffusersExactly()
    {
        using var fixture = Fixture.Open(SchedulerFixture.Name);
        int checkedGrids = 0;
        foreach (var @case in SchedulerFixture.CasesWithPrefix(fixture, "ts"))
        {
            var spacing = SchedulerFixture.Spacing(fixture.Meta($"{@case}.spacing"));
            int offset = fixture.MetaInt($"{@case}.offset"), steps = fixture.MetaInt($"{@case}.steps");
            var schedule = NoiseSchedule.StableDiffusion21;
            IScheduler scheduler = fixture.Meta($"{@case}.scheduler") switch
            {
                "ddpm" => new DdpmScheduler(schedule, PredictionType.Epsilon, spacing, offset),
                "ddim" => new DdimScheduler(schedule, PredictionType.Epsilon, spacing, offset),
                "inverse" => new DdimInverseScheduler(schedule, PredictionType.Epsilon, spacing, offset),
                _ => new DpmSolverMultistepScheduler(schedule, PredictionType.Epsilon, spacing, offset),
            };
            scheduler.SetTimesteps(steps);
            Assert.True(fixture.I32($"{@case}.timesteps").AsSpan().SequenceEqual(scheduler.Timesteps),
                $"{@case}: {fixture.Meta($"{@case}.scheduler")} {spacing} offset {offset}, {steps} steps: " +
                $"[{string.Join(", ", scheduler.Timesteps.ToArray().Take(12))}…], expected [{string.Join(", ", fixture.I32($"{@case}.timesteps").Take(12))}…]");
            checkedGrids++;
        }
        Assert.True(checkedGrids > 80, $"only {checkedGrids} grids in the fixture");
    }

    [Fact]
    public void MeLFusionMusicGridIsSpecSection27()
    {
        var ddpm = SchedulerPresets.MeLFusionMusicDdpm();
        ddpm.SetTimesteps(200);
        Assert.Equal(200, ddpm.Timesteps.Length);
        Assert.Equal([995, 990, 985], ddpm.Timesteps[..3].ToArray());
        Assert.Equal(0, ddpm.Timesteps[^1]);

        var inverse = SchedulerPresets.StableDiffusion21DdimInverse();
        inverse.SetTimesteps(50);
        Assert.Equal([1, 21, 41], inverse.Timesteps[..3].ToArray());
        Assert.Equal(981, inverse.Timesteps[^1]);
    }

    [Fact]
    public void BadStepCountsAndOffsetsAreRejected()
    {
        var ddim = new DdimScheduler(NoiseSchedule.StableDiffusion21, PredictionType.Epsilon);
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.SetTimesteps(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ddim.SetTimesteps(1001));
        var dpm = new DpmSolverMultistepScheduler(NoiseSchedule.StableDiffusion21, PredictionType.Epsilon, TimestepSpacing.Leading, stepsOffset: 1);
        var error = Assert.Throws<ArgumentException>(() => dpm.SetTimesteps(999)); // 999·1 + 1 = 1000 is out of range
        Assert.Contains("1000", error.Message);
        Assert.Throws<ArgumentException>(() => new DdimInverseScheduler(NoiseSchedule.StableDiffusion21, PredictionType.Epsilon, TimestepSpacing.Linspace));
    }
}
