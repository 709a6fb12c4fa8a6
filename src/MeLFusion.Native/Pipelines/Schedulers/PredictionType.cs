namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>What the denoising network predicts (diffusers' prediction_type).</summary>
public enum PredictionType
{
    /// <summary>The added noise ε.</summary>
    Epsilon,

    /// <summary>v = √ᾱ ε − √(1 − ᾱ) x₀ (Salimans &amp; Ho); SD 2.1 (768-v), Tango and MeLFusion.</summary>
    VPrediction,

    /// <summary>The clean sample x₀.</summary>
    Sample,
}

/// <summary>
/// A model output turned into the predicted clean sample x₀ and noise ε, both linear in (sample x, model output m):
/// x₀ = X0FromSample·x + X0FromOutput·m, ε = EpsFromSample·x + EpsFromOutput·m, at noise level ᾱ.
/// </summary>
internal readonly record struct PredictionCoefficients(double X0FromSample, double X0FromOutput, double EpsFromSample, double EpsFromOutput)
{
    public static PredictionCoefficients At(PredictionType prediction, double alphaCumprod)
    {
        double signal = Math.Sqrt(alphaCumprod), noise = Math.Sqrt(1 - alphaCumprod);
        return prediction switch
        {
            PredictionType.Epsilon => new(1 / signal, -noise / signal, 0, 1),
            PredictionType.Sample => new(0, 1, 1 / noise, -signal / noise),
            PredictionType.VPrediction => new(signal, -noise, noise, signal),
            _ => throw new ArgumentOutOfRangeException(nameof(prediction), prediction, "unknown prediction type"),
        };
    }
}
