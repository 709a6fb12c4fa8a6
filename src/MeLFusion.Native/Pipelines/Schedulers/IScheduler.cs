using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>
/// A diffusion sampler on host f32 latents (diffusers semantics). Typical loop:
/// <c>SetTimesteps(n)</c>; x = noise · InitNoiseSigma; for each t in Timesteps: ScaleModelInput(x, t), run the model,
/// <c>Step(output, t, x, x, noise)</c>. Tensors are flat spans of equal length; <c>output</c> may be the same span as
/// <c>sample</c>. Steps allocate nothing (a multistep solver sizes its history once per sample length).
/// </summary>
public interface IScheduler
{
    NoiseSchedule Schedule { get; }
    PredictionType Prediction { get; }

    /// <summary>The timesteps to run the model at, in order; empty until <see cref="SetTimesteps"/>.</summary>
    ReadOnlySpan<int> Timesteps { get; }

    /// <summary>Standard deviation of the initial latent noise (1 for these variance-preserving samplers).</summary>
    float InitNoiseSigma { get; }

    /// <summary>Chooses <paramref name="inferenceSteps"/> timesteps and resets any per-run state.</summary>
    void SetTimesteps(int inferenceSteps);

    /// <summary>Scales the model input in place for timestep t where the sampler needs it (a no-op for these).</summary>
    void ScaleModelInput(Span<float> sample, int timestep);

    /// <summary>
    /// One sampling step from <paramref name="sample"/> at <paramref name="timestep"/> with the model's output there,
    /// written to <paramref name="output"/>. Stochastic steps draw from <paramref name="noise"/>.
    /// </summary>
    void Step(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output, StepNoise noise = default);

    /// <summary>Forward process at t: √ᾱ_t · original + √(1 − ᾱ_t) · noise.</summary>
    void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int timestep, Span<float> output);

    /// <summary>The v-prediction target at t: √ᾱ_t · noise − √(1 − ᾱ_t) · sample.</summary>
    void GetVelocity(ReadOnlySpan<float> sample, ReadOnlySpan<float> noise, int timestep, Span<float> output);
}

/// <summary>
/// The Gaussian noise a stochastic step adds: an explicit tensor (as diffusers' variance_noise, for tests and replays)
/// or a <see cref="PhiloxGenerator"/> that supplies one normal per element and advances by the sample length.
/// <c>default</c> means none; deterministic steps ignore it and consume nothing.
/// </summary>
public readonly ref struct StepNoise
{
    private readonly ReadOnlySpan<float> _values;
    private readonly PhiloxGenerator? _generator;
    private readonly bool _explicit;

    public StepNoise(ReadOnlySpan<float> values)
    {
        _values = values;
        _explicit = true;
    }

    public StepNoise(PhiloxGenerator generator) => _generator = generator ?? throw new ArgumentNullException(nameof(generator));

    /// <summary>destination[i] += scale · noise[i].</summary>
    internal void AddScaled(Span<float> destination, float scale, string scheduler, int timestep)
    {
        if (_generator is not null)
        {
            _generator.AddNextNormal(scale, destination);
            return;
        }
        if (!_explicit)
            throw new ArgumentException($"{scheduler}: the step at t={timestep} is stochastic and needs noise (a tensor or a PhiloxGenerator)");
        if (_values.Length != destination.Length)
            throw new ArgumentException($"{scheduler}: noise has {_values.Length} elements, the sample {destination.Length}");
        for (int i = 0; i < destination.Length; i++)
            destination[i] += scale * _values[i];
    }
}
