using System.Collections.ObjectModel;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Unet;

/// <summary>
/// The cross-attention outputs of a UNet's up blocks, keyed by (up block, attention): attn2's output after
/// to_out[0], before its residual add, as [B, H·W, C]. These are the image features MeLFusion taps from the Stable
/// Diffusion UNet (spec §1.3). Down and mid blocks are not tapped.
/// </summary>
public sealed class UNetTaps(IDictionary<(int UpBlock, int Attention), Value> taps)
    : ReadOnlyDictionary<(int UpBlock, int Attention), Value>(taps);

/// <summary>
/// MeLFusion's visual synapse (spec §1.3) as it enters the music UNet: for each (up block, attention) with a feature
/// S [B, N, C], that attn2's text states E [B, L, D] become E' = (1 - f)·E + f·P(S) before to_k and to_v, where
/// f = (2·sigmoid(a) - 1) / 5 from the checkpoint's scalar <c>...attn2.alpha</c> [1, 1] (a = 0 when the checkpoint
/// has none, as in Tango's own weights) and P adaptively average-pools S to [L, D] (2-D when both dims differ,
/// else 1-D on the differing one). Where f is 0 the mix is left out of the graph, so the UNet is exactly the
/// text-only one.
/// </summary>
/// <param name="Features">Image features per (up block, attention), e.g. the <see cref="UNetTaps"/> of the image UNet.</param>
/// <param name="TrainableAlphas">
/// Training: f is computed in the graph from the alpha weights (and the mix is always built, even at a = 0), so
/// gradients reach them.
/// </param>
public sealed record UNetSynapse(IReadOnlyDictionary<(int UpBlock, int Attention), Value> Features, bool TrainableAlphas = false)
{
    /// <summary>MeLFusion's ρ: f = (2·sigmoid(a) - 1) / ρ keeps the mix weight in (-0.2, 0.2).</summary>
    public const float Rho = 5;

    /// <summary>
    /// The synapse from an image UNet's <paramref name="taps"/> into <paramref name="receiver"/>: each up-block
    /// cross-attention of the receiver takes the tap at the same (up block, attention); taps where the receiver has no
    /// cross-attention (a level built without attention, to save its cost) feed nothing.
    /// </summary>
    public static UNetSynapse FromTaps(UNetTaps taps, UNetConfig receiver, bool trainableAlphas = false) =>
        new(taps.Where(tap => receiver.HasUpCrossAttention(tap.Key.UpBlock, tap.Key.Attention))
                .ToDictionary(tap => tap.Key, tap => tap.Value), trainableAlphas);

    /// <summary>The checkpoint name (without the model prefix) of the alpha of up block <paramref name="upBlock"/>'s attention <paramref name="attention"/>.</summary>
    public static string AlphaName(int upBlock, int attention) =>
        $"up_blocks.{upBlock}.attentions.{attention}.transformer_blocks.0.attn2.alpha";

    /// <summary>The mix weight f = (2·sigmoid(a) - 1) / ρ, in f32 as the PyTorch code computes it.</summary>
    public static float MixWeight(float alpha)
    {
        float sigmoid = 1f / (1f + MathF.Exp(-alpha));
        return (2f * sigmoid - 1f) / Rho;
    }

    /// <summary>
    /// Pools <paramref name="feature"/> [B, N, C] to [B, <paramref name="tokens"/>, <paramref name="channels"/>] with
    /// PyTorch adaptive average pooling: both dims at once when both differ, else only the differing one.
    /// </summary>
    public static Value PoolToContext(GraphBuilder g, Value feature, int tokens, int channels)
    {
        int n = feature.Shape[1], c = feature.Shape[2];
        if (n != tokens && c != channels) return g.AdaptiveAvgPool2d(feature, tokens, channels);
        if (n != tokens) return g.AdaptiveAvgPool1d(feature, 1, tokens);
        if (c != channels) return g.AdaptiveAvgPool1d(feature, 2, channels);
        return feature;
    }

    /// <summary>(1 - f)·<paramref name="context"/> + f·P(<paramref name="feature"/>); <paramref name="f"/> must be nonzero.</summary>
    internal static Value Mix(GraphBuilder g, Value context, Value feature, float f)
    {
        var pooled = PoolToContext(g, feature, context.Shape[1], context.Shape[2]);
        return g.Add(g.Scale(context, 1f - f), g.Scale(pooled, f));
    }

    /// <summary>
    /// The mix with f = tanh(a/2)/ρ computed in the graph from the alpha weight [1, 1] (equal to (2·sigmoid(a) - 1)/ρ),
    /// as context + f·(P(S) - context).
    /// </summary>
    internal static Value MixTrainable(GraphBuilder g, Value context, Value feature, Value alpha)
    {
        var pooled = PoolToContext(g, feature, context.Shape[1], context.Shape[2]);
        var f = g.Scale(g.Tanh(g.Scale(alpha, 0.5f)), 1f / Rho);
        return g.Add(context, g.Mul(g.Sub(pooled, context), f));
    }

    /// <summary>Checks every feature against the model and the text states; messages name the offending key and shapes.</summary>
    internal void Validate(UNetConfig config, Value context)
    {
        foreach (var ((block, attention), feature) in Features)
        {
            string key = $"({block}, {attention})";
            if (!config.HasUpCrossAttention(block, attention))
                throw new ArgumentException($"unet synapse: feature {key} names no up-block cross-attention of this UNet "
                    + $"(up blocks [{string.Join(", ", config.UpBlockTypes)}], {config.UpLayersPerBlock} attentions each)");
            if (feature.DType != DType.F32 || feature.Shape.Rank != 3 || feature.Shape[0] != context.Shape[0]
                || feature.Shape[1] == 0 || feature.Shape[2] == 0)
                throw new ArgumentException($"unet synapse: feature {key} is {feature.Desc}; expected F32 [{context.Shape[0]}, tokens, channels] "
                    + $"for encoder hidden states {context.Shape}");
        }
    }
}
