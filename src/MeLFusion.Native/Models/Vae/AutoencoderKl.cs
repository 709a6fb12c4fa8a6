using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Vae;

/// <summary>Hyper-parameters of an LDM-style KL autoencoder (the original latent-diffusion code's naming).</summary>
public sealed record AutoencoderKlConfig(
    int InChannels,
    int OutChannels,
    int BaseChannels,
    int[] ChannelMultipliers,
    int ResBlocks,
    int LatentChannels,
    float ScaleFactor,
    int Groups = 32,
    float Eps = 1e-6f)
{
    /// <summary>AudioLDM's music VAE (Tango, MeLFusion): mel [B,1,1024,64] ↔ latent [B,8,256,16].</summary>
    public static AutoencoderKlConfig AudioLdmMusic { get; } = new(1, 1, 128, [1, 2, 4], 2, 8, 0.9227914214134216f);

    /// <summary>Stable Diffusion's image VAE: RGB [B,3,8h,8w] ↔ latent [B,4,h,w].</summary>
    public static AutoencoderKlConfig StableDiffusion { get; } = new(3, 3, 128, [1, 2, 4, 4], 2, 4, 0.18215f);

    /// <summary>Spatial reduction factor between data and latent.</summary>
    public int Downsampling => 1 << (ChannelMultipliers.Length - 1);
}

/// <summary>
/// The LDM <c>AutoencoderKL</c>: encoder to a diagonal Gaussian (mean, log-variance) through <c>quant_conv</c>, and
/// decoder from <c>post_quant_conv</c>. Weight names follow the LDM checkpoints (<c>encoder.down.0.block.0.norm1</c>,
/// <c>decoder.up.2.upsample.conv</c>, ...). Group norms use eps 1e-6; the mid block has one single-head attention.
/// </summary>
public sealed class AutoencoderKl(AutoencoderKlConfig config)
{
    public AutoencoderKlConfig Config { get; } = config;

    /// <summary>Decodes a latent scaled for diffusion (z · scale factor) back to data space.</summary>
    public Value Decode(GraphBuilder g, WeightSet weights, Value scaledLatent, string prefix = "")
    {
        var c = Config;
        var w = new Weights(g, weights, prefix);
        var z = g.Scale(scaledLatent, 1f / c.ScaleFactor);
        z = g.Conv2d(z, w.Get("post_quant_conv.weight", c.LatentChannels, c.LatentChannels, 1, 1), w.Get("post_quant_conv.bias", c.LatentChannels));
        int channels = c.BaseChannels * c.ChannelMultipliers[^1];
        var h = Conv3x3(g, w, "decoder.conv_in", z, c.LatentChannels, channels);
        h = MidBlock(g, w, "decoder.mid", h, channels);
        for (int level = c.ChannelMultipliers.Length - 1; level >= 0; level--)
        {
            int outChannels = c.BaseChannels * c.ChannelMultipliers[level];
            for (int b = 0; b <= c.ResBlocks; b++)
            {
                h = ResnetBlock(g, w, $"decoder.up.{level}.block.{b}", h, channels, outChannels);
                channels = outChannels;
            }
            if (level != 0) h = Conv3x3(g, w, $"decoder.up.{level}.upsample.conv", g.UpsampleNearest2x(h), channels, channels);
        }
        h = g.GroupNorm(h, w.Get("decoder.norm_out.weight", channels), w.Get("decoder.norm_out.bias", channels), c.Groups, c.Eps, silu: true);
        return Conv3x3(g, w, "decoder.conv_out", h, channels, c.OutChannels);
    }

    /// <summary>Encodes data to the Gaussian's mean and log-variance (clamped to [-30, 20]), each [B, latent, h, w].</summary>
    public (Value Mean, Value LogVariance) Encode(GraphBuilder g, WeightSet weights, Value x, string prefix = "")
    {
        var c = Config;
        var w = new Weights(g, weights, prefix);
        int channels = c.BaseChannels;
        var h = Conv3x3(g, w, "encoder.conv_in", x, c.InChannels, channels);
        for (int level = 0; level < c.ChannelMultipliers.Length; level++)
        {
            int outChannels = c.BaseChannels * c.ChannelMultipliers[level];
            for (int b = 0; b < c.ResBlocks; b++)
            {
                h = ResnetBlock(g, w, $"encoder.down.{level}.block.{b}", h, channels, outChannels);
                channels = outChannels;
            }
            if (level != c.ChannelMultipliers.Length - 1)
            {
                // LDM pads only right and bottom before the stride-2 convolution.
                var padded = g.Pad2d(h, 0, 1, 0, 1);
                h = g.Conv2d(padded, w.Get($"encoder.down.{level}.downsample.conv.weight", channels, channels, 3, 3),
                    w.Get($"encoder.down.{level}.downsample.conv.bias", channels), stride: 2);
            }
        }
        h = MidBlock(g, w, "encoder.mid", h, channels);
        h = g.GroupNorm(h, w.Get("encoder.norm_out.weight", channels), w.Get("encoder.norm_out.bias", channels), c.Groups, c.Eps, silu: true);
        int moments = 2 * c.LatentChannels;
        h = Conv3x3(g, w, "encoder.conv_out", h, channels, moments);
        h = g.Conv2d(h, w.Get("quant_conv.weight", moments, moments, 1, 1), w.Get("quant_conv.bias", moments));
        var mean = g.Contiguous(g.Slice(h, 1, 0, c.LatentChannels));
        var logVariance = g.Clamp(g.Contiguous(g.Slice(h, 1, c.LatentChannels, c.LatentChannels)), -30f, 20f);
        return (mean, logVariance);
    }

    private Value MidBlock(GraphBuilder g, Weights w, string name, Value h, int channels)
    {
        h = ResnetBlock(g, w, name + ".block_1", h, channels, channels);
        h = AttentionBlock(g, w, name + ".attn_1", h, channels);
        return ResnetBlock(g, w, name + ".block_2", h, channels, channels);
    }

    private Value ResnetBlock(GraphBuilder g, Weights w, string name, Value x, int inChannels, int outChannels)
    {
        var c = Config;
        var h = g.GroupNorm(x, w.Get(name + ".norm1.weight", inChannels), w.Get(name + ".norm1.bias", inChannels), c.Groups, c.Eps, silu: true);
        h = Conv3x3(g, w, name + ".conv1", h, inChannels, outChannels);
        h = g.GroupNorm(h, w.Get(name + ".norm2.weight", outChannels), w.Get(name + ".norm2.bias", outChannels), c.Groups, c.Eps, silu: true);
        var shortcut = inChannels == outChannels ? x
            : g.Conv2d(x, w.Get(name + ".nin_shortcut.weight", outChannels, inChannels, 1, 1), w.Get(name + ".nin_shortcut.bias", outChannels));
        return g.Conv2d(h, w.Get(name + ".conv2.weight", outChannels, outChannels, 3, 3), w.Get(name + ".conv2.bias", outChannels),
            padding: 1, residual: shortcut);
    }

    /// <summary>Single-head self-attention over all H·W positions, with 1×1-conv projections, added to the input.</summary>
    private Value AttentionBlock(GraphBuilder g, Weights w, string name, Value x, int channels)
    {
        int batch = x.Shape[0], height = x.Shape[2], width = x.Shape[3];
        var h = g.GroupNorm(x, w.Get(name + ".norm.weight", channels), w.Get(name + ".norm.bias", channels), Config.Groups, Config.Eps);
        var tokens = g.Contiguous(g.Permute(g.Reshape(h, batch, channels, height * width), 0, 2, 1));
        Value Project(string p, Value t) => g.Linear(t, g.Reshape(w.Get($"{name}.{p}.weight", channels, channels, 1, 1), channels, channels), w.Get($"{name}.{p}.bias", channels));
        var attended = g.Attention(Project("q", tokens), Project("k", tokens), Project("v", tokens), heads: 1);
        var projected = Project("proj_out", attended);
        var back = g.Reshape(g.Contiguous(g.Permute(projected, 0, 2, 1)), batch, channels, height, width);
        return g.Add(back, x);
    }

    private static Value Conv3x3(GraphBuilder g, Weights w, string name, Value x, int inChannels, int outChannels) =>
        g.Conv2d(x, w.Get(name + ".weight", outChannels, inChannels, 3, 3), w.Get(name + ".bias", outChannels), padding: 1);

    /// <summary>Looks weights up under the model's prefix and adds each to the graph once.</summary>
    private sealed class Weights(GraphBuilder g, WeightSet set, string prefix)
    {
        private readonly Dictionary<string, Value> _values = [];

        public Value Get(string name, params int[] dims)
        {
            if (!_values.TryGetValue(name, out var v)) _values[name] = v = set.Constant(g, prefix + name, dims);
            return v;
        }
    }
}
