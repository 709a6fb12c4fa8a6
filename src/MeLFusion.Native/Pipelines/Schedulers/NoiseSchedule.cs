namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>How the per-timestep noise variances β_t of the training process are laid out (diffusers names).</summary>
public enum BetaSchedule
{
    /// <summary>β linear from start to end.</summary>
    Linear,

    /// <summary>√β linear from √start to √end, squared: the latent-diffusion schedule (SD, Tango, MeLFusion).</summary>
    ScaledLinear,

    /// <summary>Glide's cosine ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), β = 1 − ᾱ(t₂)/ᾱ(t₁) capped at 0.999.</summary>
    SquaredCosCapV2,
}

/// <summary>
/// The discrete forward process shared by every scheduler: β_t and ᾱ_t = Π(1 − β) for t in [0, T), and what follows
/// from them alone (forward noising, v targets, SNR and the Min-SNR loss weight).
/// </summary>
/// <remarks>
/// Like diffusers, the tables are f32: β is evaluated in f64 and rounded, α = 1 − β in f32, and ᾱ is a running f64
/// product of those f32 α, rounded per entry (torch's CPU cumprod accumulates f32 in f64). torch builds β with an f32
/// linspace whose last bit depends on the CPU's vector width, so the tables agree with a given torch build to an ulp
/// or so of β, a few 1e-7 relative in ᾱ. Per-step scalars are computed in f64 from the f32 tables.
/// </remarks>
public sealed class NoiseSchedule
{
    private readonly float[] _betas;
    private readonly float[] _alphasCumprod;

    public NoiseSchedule(BetaSchedule schedule, int trainTimesteps = 1000, double betaStart = 0.0001, double betaEnd = 0.02)
    {
        if (trainTimesteps < 2)
            throw new ArgumentOutOfRangeException(nameof(trainTimesteps), trainTimesteps, "a noise schedule needs at least 2 training timesteps");
        if (schedule != BetaSchedule.SquaredCosCapV2 && !(betaStart > 0 && betaStart <= betaEnd && betaEnd < 1))
            throw new ArgumentException($"noise schedule: need 0 < betaStart <= betaEnd < 1, got {betaStart} and {betaEnd}");
        Kind = schedule;
        TrainTimesteps = trainTimesteps;
        _betas = new float[trainTimesteps];
        _alphasCumprod = new float[trainTimesteps];
        for (int t = 0; t < trainTimesteps; t++)
            _betas[t] = (float)Beta(schedule, t, trainTimesteps, betaStart, betaEnd);
        double product = 1;
        for (int t = 0; t < trainTimesteps; t++)
        {
            product *= 1f - _betas[t];
            _alphasCumprod[t] = (float)product;
        }
    }

    /// <summary>Stable Diffusion 2.1's schedule (also Tango's and MeLFusion's): scaled_linear 0.00085 → 0.012, T = 1000.</summary>
    public static NoiseSchedule StableDiffusion21 { get; } = new(BetaSchedule.ScaledLinear, 1000, 0.00085, 0.012);

    public BetaSchedule Kind { get; }
    public int TrainTimesteps { get; }
    public ReadOnlySpan<float> Betas => _betas;
    public ReadOnlySpan<float> AlphasCumprod => _alphasCumprod;

    /// <summary>ᾱ_t; <paramref name="timestep"/> must lie in [0, T).</summary>
    public double AlphaCumprod(int timestep) => _alphasCumprod[CheckTimestep(timestep)];

    /// <summary>SNR(t) = ᾱ_t / (1 − ᾱ_t).</summary>
    public double SignalToNoise(int timestep)
    {
        double alphaCumprod = AlphaCumprod(timestep);
        return alphaCumprod / (1 - alphaCumprod);
    }

    /// <summary>
    /// Min-SNR-γ loss weight min(SNR, γ) / SNR, as Tango and MeLFusion apply it to their v-prediction MSE (γ = 5).
    /// The Min-SNR paper's v-prediction form divides by SNR + 1; the MeLFusion training code divides by SNR.
    /// </summary>
    public float MinSnrWeight(int timestep, double gamma)
    {
        if (!(gamma > 0)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "Min-SNR γ must be positive");
        double snr = SignalToNoise(timestep);
        return (float)(Math.Min(snr, gamma) / snr);
    }

    /// <summary>Forward process: output = √ᾱ_t · original + √(1 − ᾱ_t) · noise.</summary>
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, int timestep, Span<float> output)
    {
        CheckLengths("AddNoise", original.Length, noise.Length, output.Length);
        double alphaCumprod = AlphaCumprod(timestep);
        Combine(original, Math.Sqrt(alphaCumprod), noise, Math.Sqrt(1 - alphaCumprod), output);
    }

    /// <summary>The v-prediction target: output = √ᾱ_t · noise − √(1 − ᾱ_t) · sample.</summary>
    public void GetVelocity(ReadOnlySpan<float> sample, ReadOnlySpan<float> noise, int timestep, Span<float> output)
    {
        CheckLengths("GetVelocity", sample.Length, noise.Length, output.Length);
        double alphaCumprod = AlphaCumprod(timestep);
        Combine(noise, Math.Sqrt(alphaCumprod), sample, -Math.Sqrt(1 - alphaCumprod), output);
    }

    internal int CheckTimestep(int timestep) =>
        (uint)timestep < (uint)TrainTimesteps ? timestep
            : throw new ArgumentOutOfRangeException(nameof(timestep), timestep, $"timestep must lie in [0, {TrainTimesteps})");

    /// <summary>Throws unless every tensor of a scheduler call has the sample's element count.</summary>
    internal static void CheckLengths(string what, int sample, int other, int output)
    {
        if (other != sample || output != sample)
            throw new ArgumentException($"{what}: tensors of {sample}, {other} and {output} elements; all must have the same length");
    }

    /// <summary>output = a·x + b·y per element, in f64, rounded once.</summary>
    internal static void Combine(ReadOnlySpan<float> x, double a, ReadOnlySpan<float> y, double b, Span<float> output)
    {
        for (int i = 0; i < output.Length; i++)
            output[i] = (float)(a * x[i] + b * y[i]);
    }

    private static double Beta(BetaSchedule schedule, int t, int count, double start, double end)
    {
        double fraction = (double)t / (count - 1);
        switch (schedule)
        {
            case BetaSchedule.Linear:
                return start + (end - start) * fraction;
            case BetaSchedule.ScaledLinear:
                double root = Math.Sqrt(start) + (Math.Sqrt(end) - Math.Sqrt(start)) * fraction;
                return root * root;
            case BetaSchedule.SquaredCosCapV2:
                return Math.Min(1 - CosineAlphaBar((t + 1.0) / count) / CosineAlphaBar((double)t / count), 0.999);
            default:
                throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "unknown beta schedule");
        }
    }

    private static double CosineAlphaBar(double t)
    {
        double c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }
}
