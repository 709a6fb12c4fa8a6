using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// VAE training: encode, sample z = mean + exp(logvar/2)·ε, decode, and minimise the L1 reconstruction error plus
/// <see cref="TaskSettings.KlWeight"/> times the KL to N(0, 1) (both per element).
/// </summary>
public abstract class AutoencoderTask(string kind, MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings,
    AutoencoderKlConfig vae) : TrainingTaskBase(kind, model, trained, data, settings)
{
    private const int LatentNoiseStream = 0;

    /// <summary>Declares the data inputs and returns what the VAE reconstructs, [B, C, H, W].</summary>
    protected abstract Value Target(GraphBuilder g);

    public override Value BuildLoss(GraphBuilder g)
    {
        var x = Target(g);
        var autoencoder = new AutoencoderKl(vae);
        var (mean, logVariance) = autoencoder.Encode(g, Weights, x);
        var epsilon = g.Input("latent_noise", DType.F32, mean.Shape.Dims.ToArray());
        var z = g.Add(mean, g.Mul(g.Exp(g.Scale(logVariance, 0.5f)), epsilon));
        var reconstruction = autoencoder.Decode(g, Weights, g.Scale(z, vae.ScaleFactor));
        return g.Add(Losses.L1(g, reconstruction, x), g.Scale(Losses.GaussianKl(g, mean, logVariance), Settings.KlWeight));
    }

    protected override void Feed(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws)
    {
        plan.SetInput<float>("latent_noise", draws.Normal(LatentNoiseStream, plan.Input("latent_noise").ElementCount));
        FeedData(plan, batch);
    }

    protected abstract void FeedData(ExecutionPlan plan, MicroBatch batch);
}

/// <summary><c>music-vae</c>: the AudioLDM-style VAE on log-mel images [B, 1, frames, 64].</summary>
public sealed class MusicVaeTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    : AutoencoderTask("music-vae", model, trained, data, settings, model.Config.MusicVae)
{
    protected override Value Target(GraphBuilder g) =>
        MelFrontEnd.AsImage(g, Mel.LogMel(g, Backend, g.Input("audio", DType.F32, Batch, Data.ClipSamples)), VaeFrames);

    protected override void FeedData(ExecutionPlan plan, MicroBatch batch) => plan.SetInput<float>("audio", batch.Audio);
}

/// <summary><c>image-vae</c>: the image VAE on images in [-1, 1].</summary>
public sealed class ImageVaeTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    : AutoencoderTask("image-vae", model, trained, data, settings, model.Config.ImageVae)
{
    protected override Value Target(GraphBuilder g) =>
        g.Input("image", DType.F32, Batch, Config.ImageVae.InChannels, Data.ImageSize, Data.ImageSize);

    protected override void FeedData(ExecutionPlan plan, MicroBatch batch) =>
        plan.SetInput<float>("image", batch.Images ?? throw new ArgumentException("image-vae: the batch has no images"));
}
