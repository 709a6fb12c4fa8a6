using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Vocoder;

/// <summary>HiFi-GAN generator hyper-parameters (resblock type 1).</summary>
public sealed record HifiGanConfig(
    int MelChannels,
    int[] UpsampleRates,
    int[] UpsampleKernelSizes,
    int UpsampleInitialChannel,
    int[] ResblockKernelSizes,
    int[][] ResblockDilations)
{
    /// <summary>AudioLDM's HIFIGAN_16K_64, used by Tango and MeLFusion: 64 mels at hop 160 to 16 kHz.</summary>
    public static HifiGanConfig AudioLdm16k { get; } = new(64, [5, 4, 2, 2, 2], [16, 16, 8, 4, 4], 1024, [3, 7, 11],
        [[1, 3, 5], [1, 3, 5], [1, 3, 5]]);

    /// <summary>Samples produced per mel frame.</summary>
    public int HopLength => UpsampleRates.Aggregate(1, (a, r) => a * r);

    public int Channels(int stage) => UpsampleInitialChannel >> stage;
}

/// <summary>
/// The HiFi-GAN generator: conv_pre, then per stage leaky-ReLU + transposed convolution and the mean of the
/// multi-receptive-field residual blocks, then leaky-ReLU (slope 0.01), conv_post and tanh. Every leaky-ReLU is fused
/// into the convolution that follows it, and each residual add into the convolution that produces it.
/// </summary>
public sealed class HifiGan(HifiGanConfig config)
{
    private const float LeakySlope = 0.1f;
    private const float FinalLeakySlope = 0.01f;

    public HifiGanConfig Config { get; } = config;

    /// <summary>Builds the generator on <paramref name="mel"/> [B, mels, frames]; returns the waveform [B, 1, frames·hop].</summary>
    public Value Build(GraphBuilder g, WeightSet weights, Value mel, string prefix = "")
    {
        var c = Config;
        if (mel.Shape.Rank != 3 || mel.Shape[1] != c.MelChannels)
            throw new ArgumentException($"hifigan: mel must be [B, {c.MelChannels}, frames], got {mel.Shape}");
        Value W(string name, params int[] dims) => weights.Constant(g, prefix + name, dims);

        var x = g.Conv1d(mel, W("conv_pre.weight", c.UpsampleInitialChannel, c.MelChannels, 7), W("conv_pre.bias", c.UpsampleInitialChannel), padding: 3);
        int kernels = c.ResblockKernelSizes.Length;
        for (int i = 0; i < c.UpsampleRates.Length; i++)
        {
            x = Upsample(g, W, x, i);
            int cout = c.Channels(i + 1);
            Value? sum = null;
            for (int j = 0; j < kernels; j++)
            {
                var r = ResBlock(g, W, x, $"resblocks.{i * kernels + j}", cout, c.ResblockKernelSizes[j], c.ResblockDilations[j]);
                sum = sum is null ? r : g.Add(sum, r);
            }
            x = g.Scale(sum!, 1f / kernels);
        }
        int last = c.Channels(c.UpsampleRates.Length);
        x = g.Conv1d(x, W("conv_post.weight", 1, last, 7), W("conv_post.bias", 1), padding: 3, inputLeakySlope: FinalLeakySlope);
        return g.Tanh(x);
    }

    /// <summary>
    /// Upsampling stage <paramref name="stage"/>: leaky-ReLU (fused) and the transposed convolution <c>ups.{stage}</c>.
    /// <paramref name="w"/> supplies each weight by name (without prefix) and dims.
    /// </summary>
    internal Value Upsample(GraphBuilder g, Func<string, int[], Value> w, Value x, int stage)
    {
        var c = Config;
        int cin = c.Channels(stage), cout = c.Channels(stage + 1), k = c.UpsampleKernelSizes[stage], u = c.UpsampleRates[stage];
        return g.ConvTranspose1d(x, w($"ups.{stage}.weight", [cin, cout, k]), w($"ups.{stage}.bias", [cout]),
            stride: u, padding: (k - u) / 2, inputLeakySlope: LeakySlope);
    }

    /// <summary>
    /// Residual block type 1 named <paramref name="name"/>: per dilation, x += conv2(leaky(conv1_dilated(leaky(x)))).
    /// <paramref name="w"/> supplies each weight by name (without prefix) and dims.
    /// </summary>
    internal static Value ResBlock(GraphBuilder g, Func<string, int[], Value> w, Value x, string name, int channels, int kernel, int[] dilations)
    {
        for (int d = 0; d < dilations.Length; d++)
        {
            int dilation = dilations[d];
            var h = g.Conv1d(x, w($"{name}.convs1.{d}.weight", [channels, channels, kernel]), w($"{name}.convs1.{d}.bias", [channels]),
                padding: dilation * (kernel - 1) / 2, dilation: dilation, inputLeakySlope: LeakySlope);
            x = g.Conv1d(h, w($"{name}.convs2.{d}.weight", [channels, channels, kernel]), w($"{name}.convs2.{d}.bias", [channels]),
                padding: (kernel - 1) / 2, inputLeakySlope: LeakySlope, residual: x);
        }
        return x;
    }
}
