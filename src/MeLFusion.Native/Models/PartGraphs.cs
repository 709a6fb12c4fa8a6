using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models;

/// <summary>
/// Builds each part of the system once on the smallest inputs it accepts, so that every weight the part reads is
/// requested from a <see cref="WeightSet"/> by name and shape. Used to create fresh checkpoints (an initialising set)
/// and to check converted ones (a set opened on the file).
/// </summary>
public static class PartGraphs
{
    public static void TextEncoder(GraphBuilder g, WeightSet weights, T5Config config)
    {
        using var encoder = new T5Encoder(config);
        encoder.Build(g, weights, g.Input("ids", DType.I32, 1, 1), g.Input("mask", DType.I32, 1, 1));
    }

    /// <summary>The encoder on the smallest input that survives every downsampling, the decoder on a 1×1 latent.</summary>
    public static void Vae(GraphBuilder g, WeightSet weights, AutoencoderKlConfig config)
    {
        var vae = new AutoencoderKl(config);
        int side = config.Downsampling;
        vae.Encode(g, weights, g.Input("data", DType.F32, 1, config.InChannels, side, side));
        vae.Decode(g, weights, g.Input("latent", DType.F32, 1, config.LatentChannels, 1, 1));
    }

    public static void Vocoder(GraphBuilder g, WeightSet weights, HifiGanConfig config) =>
        new HifiGan(config).Build(g, weights, g.Input("mel", DType.F32, 1, config.MelChannels, 1));

    /// <summary>
    /// The UNet on its smallest sample. With <paramref name="withSynapse"/> every up-block cross-attention receives an
    /// image feature, so the music UNet also reads its synapse alphas.
    /// </summary>
    public static void Unet(GraphBuilder g, WeightSet weights, UNetConfig config, bool withSynapse)
    {
        int side = config.DownsampleFactor;
        var sample = g.Input("sample", DType.F32, 1, config.InChannels, side, side);
        var timestep = g.Input("t", DType.F32, 1);
        var context = g.Input("context", DType.F32, 1, 1, config.CrossAttentionDim);
        UNetSynapse? synapse = null;
        if (withSynapse)
        {
            var features = new Dictionary<(int, int), Value>();
            for (int block = 0; block < config.Levels; block++)
                for (int attention = 0; attention < config.UpLayersPerBlock; attention++)
                    if (config.HasUpCrossAttention(block, attention))
                        features[(block, attention)] = g.Input($"feature {block}.{attention}", DType.F32, 1, 1, 1);
            synapse = new UNetSynapse(features);
        }
        new UNet2DConditionModel(config).Build(g, weights, sample, timestep, context, synapse: synapse);
    }
}
