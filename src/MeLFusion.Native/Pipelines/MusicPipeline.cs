using System.Diagnostics;
using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Pipelines.Schedulers;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Pipelines;

/// <summary>How the image reaches the music UNet.</summary>
public enum SynapseMode
{
    /// <summary>As the paper describes: the image's VAE latent is DDIM-inverted through the image UNet, and at every
    /// music step the image UNet runs on the inverted trajectory at the matching noise level.</summary>
    Paper,
    /// <summary>As the released code trains: the (unscaled) image latent is forward-noised to the music step's timestep.</summary>
    CodeCompatible,
}

public enum SamplerKind
{
    Ddpm,
    Ddim,
    DpmSolver,
}

/// <summary>
/// One generation: what to make and how. The defaults favour latency: DPM-Solver++ (2M) in 25 steps; the paper
/// samples with DDPM in 200 steps (<c>Sampler: Ddpm, Steps: 200</c>).
/// </summary>
public sealed record GenerationRequest(
    string Prompt,
    RgbImage? Image = null,
    double Seconds = 10.24,
    int Steps = GenerationRequest.DefaultSteps,
    float GuidanceScale = GenerationRequest.DefaultGuidance,
    SamplerKind Sampler = GenerationRequest.DefaultSampler,
    ulong Seed = 0,
    SynapseMode Synapse = SynapseMode.Paper,
    int InversionSteps = GenerationRequest.DefaultInversionSteps)
{
    public const int DefaultSteps = 25;
    public const float DefaultGuidance = 3f;
    public const SamplerKind DefaultSampler = SamplerKind.DpmSolver;
    public const int DefaultInversionSteps = 50;
}

/// <summary>Where a generation is: the stage and, for the stepped stages, the step.</summary>
public readonly record struct PipelineProgress(string Stage, int Step, int Steps);

/// <summary>Wall time of each stage of one generation, in the order they ran.</summary>
public sealed record StageTimings(IReadOnlyList<(string Stage, TimeSpan Time)> Stages)
{
    public TimeSpan Total => Stages.Aggregate(TimeSpan.Zero, (a, s) => a + s.Time);
}

public sealed record GenerationResult(float[] Audio, int SampleRate, StageTimings Timings);

/// <summary>
/// Text (+ image) → music: T5 text states for the prompt and the empty prompt; a latent sampled by a diffusion
/// scheduler with classifier-free guidance, where each step runs one graph holding the image UNet (whose up-block
/// cross-attention outputs are tapped) feeding the music UNet through the visual synapse; then the music VAE
/// decoder and the HiFi-GAN vocoder (two graphs, timed apart). Noise comes from Philox, so a seed reproduces the output on a backend.
/// Graphs are compiled once per shape and reused across steps and calls.
/// </summary>
public sealed class MusicPipeline : IDisposable
{
    private readonly MelFusionModel _model;
    private readonly T5TextEncoder _text;
    private readonly Dictionary<string, ExecutionPlan> _plans = new(StringComparer.Ordinal);

    public MusicPipeline(MelFusionModel model)
    {
        _model = model;
        _text = new T5TextEncoder(model.TextEncoder, model.Tokenizer, model.Config.TextEncoder, maxLength: model.Config.MaxTextTokens);
    }

    public MelFusionModelConfig Config => _model.Config;

    /// <summary>Latent frames for <paramref name="seconds"/> of audio, rounded up to what the music UNet accepts.</summary>
    public int LatentFrames(double seconds)
    {
        if (!(seconds > 0 && seconds <= 600)) throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "seconds must be in (0, 600]");
        int melFrames = (int)Math.Ceiling(seconds * Config.MelFramesPerSecond);
        int factor = Config.MusicVae.Downsampling * Config.MusicUnet.DownsampleFactor;
        return (melFrames + factor - 1) / factor * Config.MusicUnet.DownsampleFactor;
    }

    public GenerationResult Generate(GenerationRequest request, Action<PipelineProgress>? progress = null, CancellationToken cancellation = default)
    {
        Validate(request);
        var c = Config;
        var timings = new List<(string, TimeSpan)>();
        var clock = Stopwatch.StartNew();
        void Lap(string stage)
        {
            timings.Add((stage, clock.Elapsed));
            clock.Restart();
        }

        progress?.Invoke(new PipelineProgress("text", 0, 1));
        var text = _text.Encode(["", request.Prompt], cancellation: cancellation);
        Lap("text encoder");

        int frames = LatentFrames(request.Seconds), bins = c.Vocoder.MelChannels / c.MusicVae.Downsampling;
        int channels = c.MusicUnet.InChannels;
        var latent = new float[channels * frames * bins];
        var rng = new PhiloxGenerator(request.Seed);
        var scheduler = CreateScheduler(request.Sampler);
        scheduler.SetTimesteps(request.Steps);
        rng.NextNormal(latent);
        for (int i = 0; i < latent.Length; i++) latent[i] *= scheduler.InitNoiseSigma;

        ImageBranch? image = request.Image is null ? null : PrepareImage(request, text, progress, cancellation);
        if (image is not null) Lap(request.Synapse == SynapseMode.Paper ? "image encode + DDIM inversion" : "image encode");

        var step = StepPlan(frames, bins, text.Length, image is not null);
        step.SetInput<float>("text", text.HiddenStates);
        step.SetInput<int>("mask", text.Tokens.Mask);
        var prediction = new float[2 * latent.Length];
        var guided = new float[latent.Length];
        var timesteps = new float[2];
        var imageLatent = image is null ? null : new float[2 * image.Latent.Length];
        var timestepList = scheduler.Timesteps.ToArray();
        for (int s = 0; s < timestepList.Length; s++)
        {
            cancellation.ThrowIfCancellationRequested();
            int t = timestepList[s];
            progress?.Invoke(new PipelineProgress("diffusion", s, timestepList.Length));
            scheduler.ScaleModelInput(latent, t);
            step.SetInput<float>("latent", latent);
            timesteps[0] = timesteps[1] = t;
            step.SetInput<float>("t", timesteps);
            if (image is not null)
            {
                var (imageT, imageX) = image.At(t);
                imageX.CopyTo(imageLatent!, 0);
                imageX.CopyTo(imageLatent!, imageX.Length);
                step.SetInput<float>("image_latent", imageLatent);
                timesteps[0] = timesteps[1] = imageT;
                step.SetInput<float>("image_t", timesteps);
            }
            step.Run(cancellation);
            step.ReadOutput<float>("prediction", prediction);
            ClassifierFreeGuidance.Apply(prediction.AsSpan(0, latent.Length), prediction.AsSpan(latent.Length), request.GuidanceScale, guided);
            scheduler.Step(guided, t, latent, latent, new StepNoise(rng));
        }
        progress?.Invoke(new PipelineProgress("diffusion", timestepList.Length, timestepList.Length));
        Lap("diffusion");

        progress?.Invoke(new PipelineProgress("decode", 0, 1));
        var decode = VaeDecodePlan(frames, bins);
        decode.SetInput<float>("latent", latent);
        decode.Run(cancellation);
        var mel = decode.ReadOutput<float>("mel");
        Lap("vae decoder");
        var vocode = VocoderPlan(mel.Length / c.Vocoder.MelChannels);
        vocode.SetInput<float>("mel", mel);
        vocode.Run(cancellation);
        var audio = vocode.ReadOutput<float>("audio");
        Lap("vocoder");
        int samples = (int)Math.Min(audio.Length, Math.Round(request.Seconds * c.SampleRate));
        return new GenerationResult(audio[..samples], c.SampleRate, new StageTimings(timings));
    }

    private static void Validate(GenerationRequest r)
    {
        if (r.Steps is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(r.Steps), r.Steps, "steps must be in [1, 1000]");
        if (r.InversionSteps is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(r.InversionSteps), r.InversionSteps, "inversion steps must be in [1, 1000]");
        if (!float.IsFinite(r.GuidanceScale)) throw new ArgumentOutOfRangeException(nameof(r.GuidanceScale), r.GuidanceScale, "guidance scale must be finite");
    }

    private static IScheduler CreateScheduler(SamplerKind kind) => kind switch
    {
        SamplerKind.Ddpm => SchedulerPresets.MeLFusionMusicDdpm(),
        SamplerKind.Ddim => SchedulerPresets.StableDiffusion21Ddim(),
        SamplerKind.DpmSolver => SchedulerPresets.StableDiffusion21DpmSolver(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };

    /// <summary>The image latent at each music timestep: looked up on the inverted trajectory, or forward-noised.</summary>
    private sealed class ImageBranch(float[] latent, Func<int, (int, float[])> at)
    {
        public float[] Latent { get; } = latent;
        public (int Timestep, float[] Latent) At(int musicTimestep) => at(musicTimestep);
    }

    /// <summary>Philox offset of the image-noise stream: far from the music stream, so adding an image never shifts the music's noise.</summary>
    private const ulong ImageNoiseOffset = 1UL << 62;

    private ImageBranch PrepareImage(GenerationRequest request, T5TextEncoding text, Action<PipelineProgress>? progress,
        CancellationToken cancellation)
    {
        var c = Config;
        progress?.Invoke(new PipelineProgress("image", 0, 1));
        var pixels = ImageTransforms.ToSignedUnitChw(ImageTransforms.Resize(request.Image!, c.ImageSize, c.ImageSize));
        var encode = ImageEncodePlan();
        encode.SetInput<float>("image", pixels);
        encode.Run(cancellation);
        var mean = encode.ReadOutput<float>("mean");
        var scheduler = SchedulerPresets.StableDiffusion21DdimInverse();
        if (request.Synapse == SynapseMode.CodeCompatible)
        {
            // The released code uses the VAE sample without the 0.18215 scale and noises it with the music step's t.
            var noise = new float[mean.Length];
            new PhiloxGenerator(request.Seed, ImageNoiseOffset).NextNormal(noise);
            var noised = new float[mean.Length];
            return new ImageBranch(mean, t =>
            {
                scheduler.AddNoise(mean, noise, t, noised);
                return (t, noised);
            });
        }

        var latent = mean.Select(v => v * c.ImageVae.ScaleFactor).ToArray();
        scheduler.SetTimesteps(request.InversionSteps);
        var invert = InversionPlan(text.Length);
        // Inversion conditions on the prompt alone (guidance 1), as diffusers' pix2pix-zero inversion does.
        invert.SetInput<float>("text", text.HiddenStates.AsSpan(text.Length * text.ModelDim));
        invert.SetInput<int>("mask", text.Tokens.Mask.AsSpan(text.Length));
        var trajectory = new List<(int Timestep, float[] Latent)> { (0, (float[])latent.Clone()) };
        var prediction = new float[latent.Length];
        var inversionSteps = scheduler.Timesteps.ToArray();
        for (int s = 0; s < inversionSteps.Length; s++)
        {
            cancellation.ThrowIfCancellationRequested();
            progress?.Invoke(new PipelineProgress("ddim inversion", s, inversionSteps.Length));
            int t = inversionSteps[s];
            invert.SetInput<float>("latent", latent);
            invert.SetInput<float>("t", [t]);
            invert.Run(cancellation);
            invert.ReadOutput<float>("prediction", prediction);
            scheduler.Step(prediction, t, latent, latent);
            trajectory.Add((t, (float[])latent.Clone()));
        }
        // At music timestep t, the inverted latent whose noise level is closest.
        return new ImageBranch(latent, t => trajectory.MinBy(e => Math.Abs(e.Timestep - t)));
    }

    private ExecutionPlan Cached(string key, Func<GraphBuilder, ExecutionPlan?> build)
    {
        if (_plans.TryGetValue(key, out var plan)) return plan;
        var g = new GraphBuilder();
        plan = build(g) ?? g.Compile(_model.Backend);
        _plans[key] = plan;
        return plan;
    }

    /// <summary>One guided step: batch 2 (unconditional, conditional) through the optional image UNet and the music UNet.</summary>
    private ExecutionPlan StepPlan(int frames, int bins, int textLength, bool withImage) =>
        Cached($"step {frames}x{bins} L{textLength} image {withImage}", g =>
        {
            var c = Config;
            var latent = g.Input("latent", DType.F32, 1, c.MusicUnet.InChannels, frames, bins);
            var t = g.Input("t", DType.F32, 2);
            var text = g.Input("text", DType.F32, 2, textLength, c.TextEncoder.ModelDim);
            var mask = g.Input("mask", DType.I32, 2, textLength);
            UNetSynapse? synapse = null;
            if (withImage)
            {
                int size = c.ImageSize / c.ImageVae.Downsampling;
                var imageLatent = g.Input("image_latent", DType.F32, 2, c.ImageUnet.InChannels, size, size);
                var imageT = g.Input("image_t", DType.F32, 2);
                // The image UNet sees the T5 states without a mask, as the released code calls it.
                var taps = new UNet2DConditionModel(c.ImageUnet).BuildWithTaps(g, _model.ImageUnet, imageLatent, imageT, text).Taps;
                synapse = UNetSynapse.FromTaps(taps, c.MusicUnet);
            }
            var batch = g.Concat(0, latent, latent);
            g.Output("prediction", new UNet2DConditionModel(c.MusicUnet).Build(g, _model.MusicUnet, batch, t, text, mask, synapse));
            return null;
        });

    private ExecutionPlan InversionPlan(int textLength) =>
        Cached($"inversion L{textLength}", g =>
        {
            var c = Config;
            int size = c.ImageSize / c.ImageVae.Downsampling;
            var latent = g.Input("latent", DType.F32, 1, c.ImageUnet.InChannels, size, size);
            var t = g.Input("t", DType.F32, 1);
            var text = g.Input("text", DType.F32, 1, textLength, c.TextEncoder.ModelDim);
            var mask = g.Input("mask", DType.I32, 1, textLength);
            g.Output("prediction", new UNet2DConditionModel(c.ImageUnet).Build(g, _model.ImageUnet, latent, t, text, mask));
            return null;
        });

    private ExecutionPlan ImageEncodePlan() =>
        Cached("image encode", g =>
        {
            var c = Config;
            var image = g.Input("image", DType.F32, 1, c.ImageVae.InChannels, c.ImageSize, c.ImageSize);
            g.Output("mean", new AutoencoderKl(c.ImageVae).Encode(g, _model.ImageVae, image).Mean);
            return null;
        });

    // The decoder and the vocoder are two graphs so that each is timed on its own; the mel between them is small
    // (time × mel channels floats), so the host round trip costs next to nothing.

    /// <summary>Latent → mel [time, mels] (music VAE decoder).</summary>
    private ExecutionPlan VaeDecodePlan(int frames, int bins) =>
        Cached($"vae decode {frames}x{bins}", g =>
        {
            var c = Config;
            var latent = g.Input("latent", DType.F32, 1, c.MusicVae.LatentChannels, frames, bins);
            var mel = new AutoencoderKl(c.MusicVae).Decode(g, _model.MusicVae, latent); // [1, 1, time, mels]
            g.Output("mel", g.Reshape(mel, mel.Shape[2], mel.Shape[3]));
            return null;
        });

    /// <summary>Mel [time, mels] → waveform (HiFi-GAN).</summary>
    private ExecutionPlan VocoderPlan(int time) =>
        Cached($"vocoder {time}", g =>
        {
            var c = Config;
            var mel = g.Input("mel", DType.F32, 1, time, c.Vocoder.MelChannels);
            var audio = new HifiGan(c.Vocoder).Build(g, _model.Vocoder, g.Permute(mel, 0, 2, 1));
            g.Output("audio", g.Reshape(audio, checked((int)audio.Shape.ElementCount)));
            return null;
        });

    public void Dispose()
    {
        foreach (var plan in _plans.Values) plan.Dispose();
        _plans.Clear();
        _text.Dispose();
    }
}
