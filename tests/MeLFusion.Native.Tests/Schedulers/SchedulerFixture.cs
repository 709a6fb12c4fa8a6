using MeLFusion.Native.Pipelines.Schedulers;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Schedulers;

/// <summary>Reads the diffusers-style parameters that tools/reference/schedulers.py stores as case metadata.</summary>
internal static class SchedulerFixture
{
    public const string Name = "schedulers";

    public static PredictionType Prediction(string name) => name switch
    {
        "epsilon" => PredictionType.Epsilon,
        "v_prediction" => PredictionType.VPrediction,
        "sample" => PredictionType.Sample,
        _ => throw new ArgumentException($"unknown prediction type {name}"),
    };

    public static TimestepSpacing Spacing(string name) => name switch
    {
        "leading" => TimestepSpacing.Leading,
        "linspace" => TimestepSpacing.Linspace,
        "trailing" => TimestepSpacing.Trailing,
        _ => throw new ArgumentException($"unknown timestep spacing {name}"),
    };

    /// <summary>The scheduler a step or loop case describes (SD 2.1 betas), with its timesteps set.</summary>
    public static SchedulerBase Create(Fixture fixture, string @case)
    {
        string Param(string name) => fixture.Meta($"{@case}.{name}");
        var prediction = Prediction(Param("prediction"));
        var spacing = Spacing(Param("spacing"));
        int offset = fixture.MetaInt($"{@case}.offset");
        bool setAlphaToOne = fixture.MetaBool($"{@case}.set_alpha_to_one");
        var schedule = NoiseSchedule.StableDiffusion21;
        SchedulerBase created = Param("scheduler") switch
        {
            "ddpm" => new DdpmScheduler(schedule, prediction, spacing, offset),
            "ddim" => new DdimScheduler(schedule, prediction, spacing, offset, setAlphaToOne, fixture.MetaFloat($"{@case}.eta")),
            "inverse" => new DdimInverseScheduler(schedule, prediction, spacing, offset, setAlphaToOne),
            "dpm" => new DpmSolverMultistepScheduler(schedule, prediction, spacing, offset,
                fixture.MetaBool($"{@case}.lower_order_final"),
                Param("final_sigma") == "zero" ? DpmFinalSigma.Zero : DpmFinalSigma.SigmaMin),
            var other => throw new ArgumentException($"unknown scheduler {other}"),
        };
        created.SetTimesteps(fixture.MetaInt($"{@case}.steps"));
        return created;
    }

    /// <summary>A float parameter as Python wrote it (its repr), parsed as f64 so that 0.00085 stays 0.00085.</summary>
    public static double MetaDouble(Fixture fixture, string key) =>
        double.Parse(fixture.Meta(key), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Cases named "&lt;prefix&gt;_&lt;k&gt;" in file order.</summary>
    public static IEnumerable<string> CasesWithPrefix(Fixture fixture, string prefix) =>
        fixture.Cases.Where(c => c.StartsWith(prefix + "_", StringComparison.Ordinal));
}
