using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Unet;

/// <summary>A UNet's prediction and the cross-attention outputs of its up blocks.</summary>
public sealed record UNetOutput(Value Prediction, UNetTaps Taps);

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> (0.15 semantics) on the graph runtime, with MeLFusion's visual synapse:
/// conv_in; sinusoidal time embedding + MLP; down blocks of ResnetBlock2D (+ Transformer2DModel) and a stride-2
/// downsampler; a mid block resnet–transformer–resnet; up blocks that concatenate the skips on channels, then
/// nearest-2x + conv upsamplers; GroupNorm + SiLU + conv_out. Weights are read under their diffusers names (spec
/// §4.1) after a prefix (Tango's "unet.", none for Stable Diffusion).
/// </summary>
public sealed class UNet2DConditionModel
{
    public UNet2DConditionModel(UNetConfig config)
    {
        config.Validate();
        Config = config;
    }

    public UNetConfig Config { get; }

    /// <summary>
    /// Builds the UNet on <paramref name="sample"/> [B, Cin, H, W] (H and W multiples of
    /// <see cref="UNetConfig.DownsampleFactor"/>), <paramref name="timestep"/> [B] and <paramref name="encoderHidden"/>
    /// [B, L, cross_attention_dim], with an optional key padding mask [B, L] I32 (0 = padding) for the
    /// cross-attentions and an optional <paramref name="synapse"/>; returns the prediction [B, Cout, H, W].
    /// </summary>
    public Value Build(GraphBuilder g, WeightSet weights, Value sample, Value timestep, Value encoderHidden,
        Value? encoderMask = null, UNetSynapse? synapse = null, string prefix = "") =>
        BuildWithTaps(g, weights, sample, timestep, encoderHidden, encoderMask, synapse, prefix).Prediction;

    /// <summary>As <see cref="Build"/>, also returning the up blocks' cross-attention outputs (the image features MeLFusion taps).</summary>
    public UNetOutput BuildWithTaps(GraphBuilder g, WeightSet weights, Value sample, Value timestep, Value encoderHidden,
        Value? encoderMask = null, UNetSynapse? synapse = null, string prefix = "")
    {
        ValidateInputs(sample, timestep, encoderHidden, encoderMask);
        synapse?.Validate(Config, encoderHidden);
        var builder = new Builder(g, new Weights(g, weights, prefix), Config, encoderHidden, encoderMask, synapse);
        var prediction = builder.Forward(sample, timestep);
        return new UNetOutput(prediction, new UNetTaps(builder.Taps));
    }

    private void ValidateInputs(Value sample, Value timestep, Value encoderHidden, Value? encoderMask)
    {
        var c = Config;
        string shapes = $"sample {sample.Desc}, timestep {timestep.Desc}, encoder hidden states {encoderHidden.Desc}"
            + (encoderMask is null ? "" : $", mask {encoderMask.Desc}");
        if (sample.DType != DType.F32 || sample.Shape.Rank != 4 || sample.Shape[1] != c.InChannels)
            throw new ArgumentException($"unet: sample must be F32 [B, {c.InChannels}, H, W] ({shapes})");
        int batch = sample.Shape[0], factor = c.DownsampleFactor;
        if (sample.Shape[2] == 0 || sample.Shape[3] == 0 || sample.Shape[2] % factor != 0 || sample.Shape[3] % factor != 0)
            throw new ArgumentException($"unet: sample height and width must be positive multiples of {factor} ({shapes})");
        if (timestep.Shape.Rank != 1 || timestep.Shape[0] != batch)
            throw new ArgumentException($"unet: timestep must be [{batch}] ({shapes})");
        if (encoderHidden.DType != DType.F32 || encoderHidden.Shape.Rank != 3 || encoderHidden.Shape[0] != batch
            || encoderHidden.Shape[2] != c.CrossAttentionDim || encoderHidden.Shape[1] == 0)
            throw new ArgumentException($"unet: encoder hidden states must be F32 [{batch}, L, {c.CrossAttentionDim}] ({shapes})");
        if (encoderMask is not null && (encoderMask.DType != DType.I32 || !encoderMask.Shape.SameDims(new TensorShape(batch, encoderHidden.Shape[1]))))
            throw new ArgumentException($"unet: encoder mask must be I32 [{batch}, {encoderHidden.Shape[1]}] ({shapes})");
    }

    /// <summary>Checkpoint access under the model's prefix.</summary>
    private sealed class Weights(GraphBuilder g, WeightSet set, string prefix)
    {
        /// <summary>The weight <paramref name="name"/> as a constant; a missing or misshapen tensor throws a <see cref="CheckpointException"/>.</summary>
        public Value this[string name, params int[] dims] => set.Constant(g, prefix + name, dims);

        /// <summary>The scalar [1, 1] weight <paramref name="name"/> read to the host, or null when the checkpoint lacks it.</summary>
        public float? Scalar(string name)
        {
            if (!set.Contains(prefix + name)) return null;
            var tensor = set.Get(prefix + name, 1, 1);
            Span<byte> bytes = stackalloc byte[sizeof(float)];
            set.Backend.CopyToHost(tensor.Data, bytes);
            return BitConverter.ToSingle(bytes);
        }
    }

    /// <summary>State of one graph construction: the shared inputs, the time embedding and the taps collected.</summary>
    private sealed class Builder(GraphBuilder g, Weights w, UNetConfig c, Value context, Value? mask, UNetSynapse? synapse)
    {
        private Value _tembSilu = null!;

        public Dictionary<(int UpBlock, int Attention), Value> Taps { get; } = [];

        public Value Forward(Value sample, Value timestep)
        {
            int c0 = c.BlockOutChannels[0], temb = c.TimeEmbedDim;
            var t = g.TimestepEmbedding(timestep, c0, c.FlipSinToCos, c.FreqShift);
            t = g.Silu(g.Linear(t, w["time_embedding.linear_1.weight", temb, c0], w["time_embedding.linear_1.bias", temb]));
            t = g.Linear(t, w["time_embedding.linear_2.weight", temb, temb], w["time_embedding.linear_2.bias", temb]);
            // Every resnet projects SiLU(temb); computing it once gives the same values.
            _tembSilu = g.Silu(t);

            var x = g.Conv2d(sample, w["conv_in.weight", c0, c.InChannels, 3, 3], w["conv_in.bias", c0], padding: 1);
            var skips = new Stack<Value>();
            skips.Push(x);
            for (int i = 0; i < c.Levels; i++)
                x = DownBlock(x, i, skips);

            int deepest = c.BlockOutChannels[^1];
            x = Resnet(x, "mid_block.resnets.0", deepest, deepest);
            x = Transformer(x, "mid_block.attentions.0", deepest, c.MidHeads, upBlock: null);
            x = Resnet(x, "mid_block.resnets.1", deepest, deepest);

            for (int i = 0; i < c.Levels; i++)
                x = UpBlock(x, i, skips);

            x = g.GroupNorm(x, w["conv_norm_out.weight", c0], w["conv_norm_out.bias", c0], c.NormGroups, c.NormEps, silu: true);
            return g.Conv2d(x, w["conv_out.weight", c.OutChannels, c0, 3, 3], w["conv_out.bias", c.OutChannels], padding: 1);
        }

        private Value DownBlock(Value x, int i, Stack<Value> skips)
        {
            string name = $"down_blocks.{i}";
            int cout = c.BlockOutChannels[i];
            int cin = c.BlockOutChannels[Math.Max(i - 1, 0)];
            for (int j = 0; j < c.LayersPerBlock; j++)
            {
                x = Resnet(x, $"{name}.resnets.{j}", j == 0 ? cin : cout, cout);
                if (c.DownBlockTypes[i] == DownBlockType.CrossAttnDownBlock2D)
                    x = Transformer(x, $"{name}.attentions.{j}", cout, c.AttentionHeads[i], upBlock: null);
                skips.Push(x);
            }
            if (i < c.Levels - 1)
            {
                x = g.Conv2d(x, w[$"{name}.downsamplers.0.conv.weight", cout, cout, 3, 3], w[$"{name}.downsamplers.0.conv.bias", cout],
                    stride: 2, padding: 1);
                skips.Push(x);
            }
            return x;
        }

        private Value UpBlock(Value x, int i, Stack<Value> skips)
        {
            string name = $"up_blocks.{i}";
            int cout = c.UpChannels(i);
            int previous = c.UpChannels(Math.Max(i - 1, 0));
            int layers = c.UpLayersPerBlock;
            for (int j = 0; j < layers; j++)
            {
                var skip = skips.Pop();
                int cin = (j == 0 ? previous : cout) + skip.Shape[1];
                x = Resnet(g.Concat(1, x, skip), $"{name}.resnets.{j}", cin, cout);
                if (c.UpBlockTypes[i] == UpBlockType.CrossAttnUpBlock2D)
                    x = Transformer(x, $"{name}.attentions.{j}", cout, c.UpHeads(i), upBlock: (i, j));
            }
            if (i < c.Levels - 1)
            {
                x = g.UpsampleNearest2x(x);
                x = g.Conv2d(x, w[$"{name}.upsamplers.0.conv.weight", cout, cout, 3, 3], w[$"{name}.upsamplers.0.conv.bias", cout], padding: 1);
            }
            return x;
        }

        /// <summary>ResnetBlock2D: GN-SiLU-conv, + time projection, GN-SiLU-conv, + (1x1-conv) shortcut.</summary>
        private Value Resnet(Value x, string name, int cin, int cout)
        {
            using var segment = g.Checkpoint(); // each resnet and transformer is one gradient-checkpointing block
            var h = g.GroupNorm(x, w[$"{name}.norm1.weight", cin], w[$"{name}.norm1.bias", cin], c.NormGroups, c.NormEps, silu: true);
            h = g.Conv2d(h, w[$"{name}.conv1.weight", cout, cin, 3, 3], w[$"{name}.conv1.bias", cout], padding: 1);
            var t = g.Linear(_tembSilu, w[$"{name}.time_emb_proj.weight", cout, c.TimeEmbedDim], w[$"{name}.time_emb_proj.bias", cout]);
            h = g.Add(h, g.Reshape(t, t.Shape[0], cout, 1, 1));
            h = g.GroupNorm(h, w[$"{name}.norm2.weight", cout], w[$"{name}.norm2.bias", cout], c.NormGroups, c.NormEps, silu: true);
            var shortcut = cin == cout ? x
                : g.Conv2d(x, w[$"{name}.conv_shortcut.weight", cout, cin, 1, 1], w[$"{name}.conv_shortcut.bias", cout]);
            return g.Conv2d(h, w[$"{name}.conv2.weight", cout, cout, 3, 3], w[$"{name}.conv2.bias", cout], padding: 1, residual: shortcut);
        }

        /// <summary>
        /// Transformer2DModel with one BasicTransformerBlock. proj_in / proj_out run on tokens [B, H·W, C] in both
        /// variants: a 1x1 convolution is the same per-pixel linear map, so its [C, C, 1, 1] weight is viewed as [C, C].
        /// </summary>
        private Value Transformer(Value x, string name, int channels, int heads, (int Block, int Attention)? upBlock)
        {
            using var segment = g.Checkpoint();
            int batch = x.Shape[0], height = x.Shape[2], width = x.Shape[3];
            var h = g.GroupNorm(x, w[$"{name}.norm.weight", channels], w[$"{name}.norm.bias", channels], c.NormGroups, UNetConfig.TransformerNormEps);
            var tokens = g.Reshape(g.Permute(h, 0, 2, 3, 1), batch, height * width, channels);
            tokens = g.Linear(tokens, Projection($"{name}.proj_in.weight", channels), w[$"{name}.proj_in.bias", channels]);
            tokens = TransformerBlock(tokens, $"{name}.transformer_blocks.0", channels, heads, upBlock);
            tokens = g.Linear(tokens, Projection($"{name}.proj_out.weight", channels), w[$"{name}.proj_out.bias", channels]);
            var spatial = g.Permute(g.Reshape(tokens, batch, height, width, channels), 0, 3, 1, 2);
            return g.Add(x, spatial);
        }

        private Value Projection(string name, int channels) =>
            c.UseLinearProjection ? w[name, channels, channels] : g.Reshape(w[name, channels, channels, 1, 1], channels, channels);

        /// <summary>BasicTransformerBlock: self-attention, cross-attention (with the synapse), GEGLU feed-forward; each pre-LN and residual.</summary>
        private Value TransformerBlock(Value x, string name, int channels, int heads, (int Block, int Attention)? upBlock)
        {
            var h = LayerNorm(x, $"{name}.norm1", channels);
            x = g.Add(x, Attention(h, h, $"{name}.attn1", channels, channels, heads, keyMask: null));

            h = LayerNorm(x, $"{name}.norm2", channels);
            var cross = Attention(h, CrossContext(upBlock), $"{name}.attn2", channels, c.CrossAttentionDim, heads, mask);
            if (upBlock is { } key) Taps[key] = cross;
            x = g.Add(x, cross);

            h = LayerNorm(x, $"{name}.norm3", channels);
            int inner = 4 * channels;
            h = g.Geglu(g.Linear(h, w[$"{name}.ff.net.0.proj.weight", 2 * inner, channels], w[$"{name}.ff.net.0.proj.bias", 2 * inner]));
            h = g.Linear(h, w[$"{name}.ff.net.2.weight", channels, inner], w[$"{name}.ff.net.2.bias", channels]);
            return g.Add(x, h);
        }

        private Value LayerNorm(Value x, string name, int channels) =>
            g.LayerNorm(x, w[$"{name}.weight", channels], w[$"{name}.bias", channels], UNetConfig.LayerNormEps);

        /// <summary>to_q(x), to_k(context), to_v(context), multi-head attention (scale 1/√D), to_out[0].</summary>
        private Value Attention(Value x, Value context, string name, int channels, int contextChannels, int heads, Value? keyMask)
        {
            var q = g.Linear(x, w[$"{name}.to_q.weight", channels, channels]);
            var k = g.Linear(context, w[$"{name}.to_k.weight", channels, contextChannels]);
            var v = g.Linear(context, w[$"{name}.to_v.weight", channels, contextChannels]);
            var o = g.Attention(q, k, v, heads, keyMask);
            return g.Linear(o, w[$"{name}.to_out.0.weight", channels, channels], w[$"{name}.to_out.0.bias", channels]);
        }

        /// <summary>The text states for an attn2: mixed with the synapse feature when there is one and its f is nonzero.</summary>
        private Value CrossContext((int Block, int Attention)? upBlock)
        {
            if (upBlock is not { } key || synapse is null || !synapse.Features.TryGetValue(key, out var feature)) return context;
            if (synapse.TrainableAlphas)
                return UNetSynapse.MixTrainable(g, context, feature, w[UNetSynapse.AlphaName(key.Block, key.Attention), 1, 1]);
            float f = UNetSynapse.MixWeight(w.Scalar(UNetSynapse.AlphaName(key.Block, key.Attention)) ?? 0f);
            return f == 0 ? context : UNetSynapse.Mix(g, context, feature, f);
        }
    }
}
