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
/// </summary>
public abstract class DiffusionTask : TrainingTaskBase
{
    private const int ValidationTimestep = 500;
    private const int NoiseStream = 0, TimestepStream = 1, TextStream = 2;

    private readonly T5Encoder _textEncoder;

    protected DiffusionTask(string kind, MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
        : base(kind, model, trained, data, settings) => _textEncoder = new T5Encoder(model.Config.TextEncoder);

    protected static NoiseSchedule Schedule => NoiseSchedule.StableDiffusion21;

    /// <summary>The dims of one example's clean latent.</summary>
    protected abstract int[] LatentDims { get; }

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
        FeedText(plan, batch, draws, TextStream);
        FeedData(plan, batch, draws);
    }

    /// <summary>Feeds the task's own data inputs (audio, images, their noise).</summary>
    protected abstract void FeedData(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws);

    public override void Dispose()
    {
        _textEncoder.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// <c>t2m-unet</c>: the music UNet with the visual synapse. Audio → log-mel → frozen music VAE (mean × scale) → x0. The
/// image → frozen image VAE (mean × scale), forward-noised at the same t (the released code's training recipe; at
/// inference the DDIM-inverted latent at that noise level takes its place) → frozen image UNet, whose up-block
/// cross-attention outputs feed the synapse with trainable alphas.
/// </summary>
public sealed class TextToMusicTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    : DiffusionTask("t2m-unet", model, trained, data, settings)
{
    private const int ImageNoiseStream = 3;

    private int ImageLatentSide => Data.ImageSize / Config.ImageVae.Downsampling;

    protected override int[] LatentDims =>
        [Config.MusicVae.LatentChannels, VaeFrames / Config.MusicVae.Downsampling, Config.Vocoder.MelChannels / Config.MusicVae.Downsampling];

    public override Value BuildLoss(GraphBuilder g)
    {
        var c = Config;
        var audio = g.Input("audio", DType.F32, Batch, Data.ClipSamples);
        var image = g.Input("image", DType.F32, Batch, c.ImageVae.InChannels, Data.ImageSize, Data.ImageSize);
        var imageNoise = g.Input("image_noise", DType.F32, Batch, c.ImageUnet.InChannels, ImageLatentSide, ImageLatentSide);
        var (ids, mask) = TextInputs(g);
        var mel = MelFrontEnd.AsImage(g, Mel.LogMel(g, Backend, audio), VaeFrames);
        var x0 = g.Scale(new AutoencoderKl(c.MusicVae).Encode(g, Model.MusicVae, mel).Mean, c.MusicVae.ScaleFactor);
        var imageLatent = g.Scale(new AutoencoderKl(c.ImageVae).Encode(g, Model.ImageVae, image).Mean, c.ImageVae.ScaleFactor);
        var text = EncodeText(g, ids, mask);
        return DiffusionLoss(g, x0, (noisy, t, signalScale, noiseScale) =>
        {
            var noisyImage = AddNoise(g, imageLatent, imageNoise, signalScale, noiseScale);
            var taps = new UNet2DConditionModel(c.ImageUnet).BuildWithTaps(g, Model.ImageUnet, noisyImage, t, text).Taps;
            var synapse = UNetSynapse.FromTaps(taps, c.MusicUnet, trainableAlphas: true);
            return new UNet2DConditionModel(c.MusicUnet).Build(g, Weights, noisy, t, text, mask, synapse);
        });
    }

    protected override void FeedData(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws)
    {
        plan.SetInput<float>("audio", batch.Audio);
        plan.SetInput<float>("image", batch.Images ?? throw new ArgumentException("t2m-unet: the batch has no images"));
        plan.SetInput<float>("image_noise", draws.Normal(ImageNoiseStream, plan.Input("image_noise").ElementCount));
    }
}

/// <summary><c>t2i-unet</c>: the text-to-image UNet on frozen image-VAE latents (mean × scale).</summary>
public sealed class TextToImageTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    : DiffusionTask("t2i-unet", model, trained, data, settings)
{
    protected override int[] LatentDims
    {
        get
        {
            int side = Data.ImageSize / Config.ImageVae.Downsampling;
            return [Config.ImageVae.LatentChannels, side, side];
        }
    }

    public override Value BuildLoss(GraphBuilder g)
    {
        var c = Config;
        var image = g.Input("image", DType.F32, Batch, c.ImageVae.InChannels, Data.ImageSize, Data.ImageSize);
        var (ids, mask) = TextInputs(g);
        var x0 = g.Scale(new AutoencoderKl(c.ImageVae).Encode(g, Model.ImageVae, image).Mean, c.ImageVae.ScaleFactor);
        var text = EncodeText(g, ids, mask);
        return DiffusionLoss(g, x0, (noisy, t, _, _) => new UNet2DConditionModel(c.ImageUnet).Build(g, Weights, noisy, t, text, mask));
    }

    protected override void FeedData(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws) =>
        plan.SetInput<float>("image", batch.Images ?? throw new ArgumentException("t2i-unet: the batch has no images"));
}
