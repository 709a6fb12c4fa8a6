using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Pipelines.Schedulers;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// Diffusion training (spec §1.5): a clean latent x0 from a frozen VAE, t uniform in [0, 1000) (500 in validation), ε
/// from Philox, x_t = √ᾱ·x0 + √(1-ᾱ)·ε on SD-2.1's scaled-linear schedule, the UNet predicting v = √ᾱ·ε − √(1-ᾱ)·x0,
/// and an MSE weighted per example by Min-SNR-γ, min(SNR, γ)/SNR as the reference code computes it.
/// The graph has two halves: the frozen one (VAE encoders, text encoder) turns an example's data into features, the
/// trained one turns features into the loss. With a <see cref="FrozenFeatures"/> cache the frozen half runs once per
/// example (and once for the empty prompt), and the step's graph starts at the features.
/// </summary>
public abstract class DiffusionTask : TrainingTaskBase
{
    private const int ValidationTimestep = 500;
    private const int NoiseStream = 0, TimestepStream = 1, TextStream = 2;
    /// <summary>The frozen features every diffusion task has: the clean latent and the text states.</summary>
    internal const string CleanLatent = "x0", TextStates = "text";

    private readonly T5Encoder _textEncoder;
    private readonly FrozenFeatures? _cache;

    protected DiffusionTask(string kind, MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings,
        FeatureCacheSettings? cache)
        : base(kind, model, trained, data, settings)
    {
        _textEncoder = new T5Encoder(model.Config.TextEncoder);
        if (cache is not null) _cache = new FrozenFeatures(this, cache);
    }

    protected static NoiseSchedule Schedule => NoiseSchedule.StableDiffusion21;

    /// <summary>The dims of one example's clean latent.</summary>
    protected abstract int[] LatentDims { get; }

    internal string ModelDirectory => Model.Directory;
    internal int ClipSamples => Data.ClipSamples;
    internal int ImageSize => Data.ImageSize;

    /// <summary>The weights parts the frozen half reads (their content is part of the feature cache's version).</summary>
    internal abstract IReadOnlyList<WeightPart> FrozenParts { get; }

    /// <summary>The frozen half for <paramref name="batch"/> examples: declares the data inputs, returns the features by name.</summary>
    protected abstract IReadOnlyDictionary<string, Value> BuildFrozen(GraphBuilder g, int batch, Value ids, Value mask);

    /// <summary>The trained half: the loss from the features and the caption mask.</summary>
    protected abstract Value BuildTrained(GraphBuilder g, IReadOnlyDictionary<string, Value> features, Value mask);

    /// <summary>Feeds the frozen half's data inputs (audio, images) for <paramref name="batch"/>.</summary>
    protected abstract void FeedData(ExecutionPlan plan, MicroBatch batch);

    /// <summary>Feeds the trained half's own random inputs beyond the latent noise (the image's noise).</summary>
    protected virtual void FeedTrainedNoise(ExecutionPlan plan, MicroBatchDraws draws) { }

    public override Value BuildLoss(GraphBuilder g)
    {
        if (_cache is null)
        {
            var (ids, mask) = TextInputs(g);
            return BuildTrained(g, BuildFrozen(g, Batch, ids, mask), mask);
        }
        var cachedMask = g.Input("mask", DType.I32, Batch, Config.MaxTextTokens);
        var features = _cache.Shapes.ToDictionary(f => f.Key, f => g.Input(f.Key, DType.F32, [Batch, .. f.Value]));
        return BuildTrained(g, features, cachedMask);
    }

    /// <summary>Compiles the frozen half for one example, with its features as the graph's outputs.</summary>
    internal ExecutionPlan CompileFrozen()
    {
        var g = new GraphBuilder();
        var (ids, mask) = (g.Input("ids", DType.I32, 1, Config.MaxTextTokens), g.Input("mask", DType.I32, 1, Config.MaxTextTokens));
        foreach (var (name, value) in BuildFrozen(g, 1, ids, mask)) g.Output(name, value);
        return g.Compile(Backend);
    }

    /// <summary>Runs the compiled frozen half on one example whose caption is <paramref name="caption"/>.</summary>
    internal void RunFrozen(ExecutionPlan plan, MicroBatch example, string caption)
    {
        var tokens = Tokenize([caption]);
        plan.SetInput<int>("ids", tokens.Ids);
        plan.SetInput<int>("mask", tokens.Mask);
        FeedData(plan, example);
        plan.Run();
    }

    /// <summary>Declares the timestep inputs and returns t [B] and the per-example √ᾱ and √(1-ᾱ) as [B, 1, 1, 1].</summary>
    protected (Value T, Value SignalScale, Value NoiseScale) TimestepInputs(GraphBuilder g) =>
        (g.Input("t", DType.F32, Batch), g.Input("signal_scale", DType.F32, Batch, 1, 1, 1), g.Input("noise_scale", DType.F32, Batch, 1, 1, 1));

    /// <summary>√ᾱ·x0 + √(1-ᾱ)·noise.</summary>
    protected static Value AddNoise(GraphBuilder g, Value x0, Value noise, Value signalScale, Value noiseScale) =>
        g.Add(g.Mul(x0, signalScale), g.Mul(noise, noiseScale));

    /// <summary>The frozen text encoder's states [B, L, D] for the caption inputs.</summary>
    protected Value EncodeText(GraphBuilder g, Value ids, Value mask) => _textEncoder.Build(g, Model.TextEncoder, ids, mask);

    /// <summary>
    /// The loss given the clean latent: noises it, lets <paramref name="predict"/> (noisy latent, t, √ᾱ, √(1-ᾱ))
    /// predict v and weights the squared error.
    /// </summary>
    protected Value DiffusionLoss(GraphBuilder g, Value x0, Func<Value, Value, Value, Value, Value> predict)
    {
        var (t, signalScale, noiseScale) = TimestepInputs(g);
        var noise = g.Input("noise", DType.F32, [Batch, .. LatentDims]);
        var weights = g.Input("snr_weight", DType.F32, Batch);
        var noisy = AddNoise(g, x0, noise, signalScale, noiseScale);
        var velocity = g.Sub(g.Mul(noise, signalScale), g.Mul(x0, noiseScale));
        return Losses.WeightedMse(g, predict(noisy, t, signalScale, noiseScale), velocity, weights);
    }

    protected override void Feed(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws)
    {
        var uniform = draws.Uniform(TimestepStream, Batch);
        var t = new float[Batch];
        var signal = new float[Batch];
        var noise = new float[Batch];
        var weights = new float[Batch];
        for (int b = 0; b < Batch; b++)
        {
            int step = draws.Validation ? ValidationTimestep : Math.Min(Schedule.TrainTimesteps - 1, (int)(uniform[b] * Schedule.TrainTimesteps));
            double alphaBar = Schedule.AlphaCumprod(step);
            t[b] = step;
            signal[b] = (float)Math.Sqrt(alphaBar);
            noise[b] = (float)Math.Sqrt(1 - alphaBar);
            weights[b] = Schedule.MinSnrWeight(step, Settings.SnrGamma);
        }
        plan.SetInput<float>("t", t);
        plan.SetInput<float>("signal_scale", signal);
        plan.SetInput<float>("noise_scale", noise);
        plan.SetInput<float>("snr_weight", weights);
        plan.SetInput<float>("noise", draws.Normal(NoiseStream, Batch * LatentDims.Aggregate(1L, (a, d) => a * d)));
        FeedTrainedNoise(plan, draws);
        if (_cache is null)
        {
            FeedText(plan, batch, draws, TextStream);
            FeedData(plan, batch);
            return;
        }
        var captions = CaptionsWithDropout(batch, draws, TextStream);
        plan.SetInput<int>("mask", Tokenize(captions).Mask);
        _cache.Feed(plan, batch, captions);
    }

    public override void Dispose()
    {
        _cache?.Dispose();
        _textEncoder.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// <c>t2m-unet</c>: the music UNet with the visual synapse. Audio → log-mel → frozen music VAE (mean × scale) → x0. The
/// image → frozen image VAE (mean × scale), forward-noised at the same t (the released code's training recipe; at
/// inference the DDIM-inverted latent at that noise level takes its place) → frozen image UNet, whose up-block
/// cross-attention outputs feed the synapse with trainable alphas. The image UNet runs on the noised latent, so it
/// belongs to the trained half's graph (frozen weights, no cacheable output).
/// </summary>
public sealed class TextToMusicTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings, FeatureCacheSettings? cache = null)
    : DiffusionTask("t2m-unet", model, trained, data, settings, cache)
{
    private const int ImageNoiseStream = 3;
    private const string ImageLatent = "image_latent";

    private int ImageLatentSide => Data.ImageSize / Config.ImageVae.Downsampling;

    protected override int[] LatentDims =>
        [Config.MusicVae.LatentChannels, VaeFrames / Config.MusicVae.Downsampling, Config.Vocoder.MelChannels / Config.MusicVae.Downsampling];

    internal override IReadOnlyList<WeightPart> FrozenParts => [WeightPart.TextEncoder, WeightPart.MusicVae, WeightPart.ImageVae];

    protected override IReadOnlyDictionary<string, Value> BuildFrozen(GraphBuilder g, int batch, Value ids, Value mask)
    {
        var c = Config;
        var audio = g.Input("audio", DType.F32, batch, Data.ClipSamples);
        var image = g.Input("image", DType.F32, batch, c.ImageVae.InChannels, Data.ImageSize, Data.ImageSize);
        var mel = MelFrontEnd.AsImage(g, Mel.LogMel(g, Backend, audio), VaeFrames);
        return new Dictionary<string, Value>
        {
            [CleanLatent] = g.Scale(new AutoencoderKl(c.MusicVae).Encode(g, Model.MusicVae, mel).Mean, c.MusicVae.ScaleFactor),
            [ImageLatent] = g.Scale(new AutoencoderKl(c.ImageVae).Encode(g, Model.ImageVae, image).Mean, c.ImageVae.ScaleFactor),
            [TextStates] = EncodeText(g, ids, mask),
        };
    }

    protected override Value BuildTrained(GraphBuilder g, IReadOnlyDictionary<string, Value> features, Value mask)
    {
        var c = Config;
        var imageNoise = g.Input("image_noise", DType.F32, Batch, c.ImageUnet.InChannels, ImageLatentSide, ImageLatentSide);
        var text = features[TextStates];
        return DiffusionLoss(g, features[CleanLatent], (noisy, t, signalScale, noiseScale) =>
        {
            var noisyImage = AddNoise(g, features[ImageLatent], imageNoise, signalScale, noiseScale);
            var taps = new UNet2DConditionModel(c.ImageUnet).BuildWithTaps(g, Model.ImageUnet, noisyImage, t, text).Taps;
            var synapse = UNetSynapse.FromTaps(taps, c.MusicUnet, trainableAlphas: true);
            return new UNet2DConditionModel(c.MusicUnet).Build(g, Weights, noisy, t, text, mask, synapse);
        });
    }

    protected override void FeedData(ExecutionPlan plan, MicroBatch batch)
    {
        plan.SetInput<float>("audio", batch.Audio);
        plan.SetInput<float>("image", batch.Images ?? throw new ArgumentException("t2m-unet: the batch has no images"));
    }

    protected override void FeedTrainedNoise(ExecutionPlan plan, MicroBatchDraws draws) =>
        plan.SetInput<float>("image_noise", draws.Normal(ImageNoiseStream, plan.Input("image_noise").ElementCount));
}

/// <summary><c>t2i-unet</c>: the text-to-image UNet on frozen image-VAE latents (mean × scale).</summary>
public sealed class TextToImageTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings, FeatureCacheSettings? cache = null)
    : DiffusionTask("t2i-unet", model, trained, data, settings, cache)
{
    protected override int[] LatentDims
    {
        get
        {
            int side = Data.ImageSize / Config.ImageVae.Downsampling;
            return [Config.ImageVae.LatentChannels, side, side];
        }
    }

    internal override IReadOnlyList<WeightPart> FrozenParts => [WeightPart.TextEncoder, WeightPart.ImageVae];

    protected override IReadOnlyDictionary<string, Value> BuildFrozen(GraphBuilder g, int batch, Value ids, Value mask)
    {
        var c = Config;
        var image = g.Input("image", DType.F32, batch, c.ImageVae.InChannels, Data.ImageSize, Data.ImageSize);
        return new Dictionary<string, Value>
        {
            [CleanLatent] = g.Scale(new AutoencoderKl(c.ImageVae).Encode(g, Model.ImageVae, image).Mean, c.ImageVae.ScaleFactor),
            [TextStates] = EncodeText(g, ids, mask),
        };
    }

    protected override Value BuildTrained(GraphBuilder g, IReadOnlyDictionary<string, Value> features, Value mask) =>
        DiffusionLoss(g, features[CleanLatent], (noisy, t, _, _) =>
            new UNet2DConditionModel(Config.ImageUnet).Build(g, Weights, noisy, t, features[TextStates], mask));

    protected override void FeedData(ExecutionPlan plan, MicroBatch batch) =>
        plan.SetInput<float>("image", batch.Images ?? throw new ArgumentException("t2i-unet: the batch has no images"));
}
