using System.Globalization;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Training;

namespace MeLFusion.Native.Tests.Training;

public class LearningRateScheduleTests
{
    /// <summary>
    /// Expected: torch's LambdaLR driving transformers' schedule lambdas (tools/reference/optimizer.py) for 16 steps,
    /// past the end of training; stored as f32, hence the relative tolerance.
    /// </summary>
    [Fact]
    public void MatchesTransformersSchedules()
    {
        using var f = Fixture.Open("lr_schedules");
        Assert.Equal(7, f.Cases.Count);
        foreach (string c in f.Cases)
        {
            var schedule = ScheduleFixtures.Read(f, c);
            var expected = f.F32($"{c}.lr");
            var actual = Enumerable.Range(0, expected.Length).Select(step => (float)schedule.LearningRate(step)).ToArray();
            Check.Close(expected, actual, 1e-12f, 1e-6f, $"learning rate schedule {c}");
        }
    }

    [Fact]
    public void WarmupRisesLinearlyFromZero()
    {
        var schedule = LearningRateSchedule.Cosine(1e-3, warmupSteps: 4, trainingSteps: 20);
        Assert.Equal([0.0, 0.25, 0.5, 0.75, 1.0], Enumerable.Range(0, 5).Select(s => schedule.Factor(s)));
    }

    /// <summary>Step 0 is torch's t = 1: the bias corrections are 1 - β.</summary>
    [Fact]
    public void AdamWScheduleHoldsTheRateAndBiasCorrections()
    {
        var schedule = new AdamWSchedule(LearningRateSchedule.Constant(2e-4), beta1: 0.9, beta2: 0.999);
        Assert.Equal([2e-4f, 0.1f, 0.001f], schedule.Values(0));
        Assert.Equal([2e-4f, (float)(1 - 0.9 * 0.9 * 0.9), (float)(1 - 0.999 * 0.999 * 0.999)], schedule.Values(2));
    }

    [Fact]
    public void RejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Linear(1e-3, warmupSteps: -1, trainingSteps: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Cosine(1e-3, 0, trainingSteps: -5));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => LearningRateSchedule.Constant(1e-3).LearningRate(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamWSchedule(LearningRateSchedule.Constant(1e-3), beta1: 1.0, beta2: 0.999));
        var ex = Assert.Throws<ArgumentException>(() =>
            new AdamWSchedule(LearningRateSchedule.Constant(1e-3), 0.9, 0.999).Write(0, new float[2]));
        Assert.Contains("holds 2 values, not 3", ex.Message);
    }
}

/// <summary>Builds the schedule a fixture case describes in its metadata (kind, peak, warmup, training, cycles).</summary>
internal static class ScheduleFixtures
{
    public static LearningRateSchedule Read(Fixture f, string c)
    {
        double peak = double.Parse(f.Meta($"{c}.peak"), CultureInfo.InvariantCulture);
        long warmup = f.MetaInt($"{c}.warmup"), training = f.MetaInt($"{c}.training");
        return f.Meta($"{c}.kind") switch
        {
            "constant" => LearningRateSchedule.Constant(peak, warmup),
            "linear" => LearningRateSchedule.Linear(peak, warmup, training),
            "cosine" => LearningRateSchedule.Cosine(peak, warmup, training, double.Parse(f.Meta($"{c}.cycles"), CultureInfo.InvariantCulture)),
            var kind => throw new InvalidDataException($"fixture case {c}: unknown schedule kind '{kind}'"),
        };
    }
}
