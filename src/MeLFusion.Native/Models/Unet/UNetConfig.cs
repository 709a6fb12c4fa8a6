using System.Text.Json;

namespace MeLFusion.Native.Models.Unet;

/// <summary>diffusers down-block kinds: resnets with a Transformer2DModel after each, or resnets only.</summary>
public enum DownBlockType
{
    CrossAttnDownBlock2D,
    DownBlock2D,
}

/// <summary>diffusers up-block kinds: resnets only, or resnets with a Transformer2DModel after each.</summary>
public enum UpBlockType
{
    UpBlock2D,
    CrossAttnUpBlock2D,
}

/// <summary>
/// Hyper-parameters of a diffusers <c>UNet2DConditionModel</c> (as vendored by MeLFusion, diffusers 0.15), for the
/// subset of options the Tango and Stable Diffusion UNets use.
/// <para>
/// <see cref="AttentionHeads"/> is diffusers' <c>attention_head_dim</c>, which in 0.15 is the NUMBER OF HEADS of a
/// block's transformers, whether the config gives a list or one int (<c>Transformer2DModel(heads, channels / heads)</c>):
/// Tango's [5, 10, 20, 20] means heads of 64 channels everywhere; SD-1.5's 8 means 8 heads of 40, 80 and 160 channels.
/// Entry i applies to down block i; the mid block uses the last entry and up block i entry (count - 1 - i).
/// </para>
/// </summary>
/// <param name="InChannels">Latent channels in.</param>
/// <param name="OutChannels">Prediction channels out.</param>
/// <param name="BlockOutChannels">Channels of each resolution level, top first.</param>
/// <param name="LayersPerBlock">Resnets per down block; up blocks have one more.</param>
/// <param name="DownBlockTypes">Kind of each down block (one per level).</param>
/// <param name="UpBlockTypes">Kind of each up block (one per level), deepest first.</param>
/// <param name="AttentionHeads">Attention heads per level (diffusers' attention_head_dim, see above).</param>
/// <param name="CrossAttentionDim">Channels of the encoder hidden states (to_k / to_v of attn2).</param>
/// <param name="UseLinearProjection">proj_in / proj_out are Linear [C, C] (SD-2, Tango) rather than 1x1 convs [C, C, 1, 1].</param>
/// <param name="NormGroups">GroupNorm groups of resnets, transformers and conv_norm_out.</param>
/// <param name="NormEps">GroupNorm epsilon of resnets and conv_norm_out (transformers use <see cref="TransformerNormEps"/>).</param>
/// <param name="FlipSinToCos">Timestep embedding as [cos | sin].</param>
/// <param name="FreqShift">diffusers' freq_shift (downscale_freq_shift) of the timestep embedding.</param>
/// <param name="UpcastAttention">Attention scores in f32; always the case here (the graph is f32), kept for fidelity.</param>
public sealed record UNetConfig(
    int InChannels,
    int OutChannels,
    int[] BlockOutChannels,
    int LayersPerBlock,
    DownBlockType[] DownBlockTypes,
    UpBlockType[] UpBlockTypes,
    int[] AttentionHeads,
    int CrossAttentionDim,
    bool UseLinearProjection,
    int NormGroups = 32,
    float NormEps = 1e-5f,
    bool FlipSinToCos = true,
    float FreqShift = 0,
    bool UpcastAttention = false)
{
    /// <summary>GroupNorm epsilon of every Transformer2DModel (fixed in diffusers).</summary>
    public const float TransformerNormEps = 1e-6f;

    /// <summary>Epsilon of the transformer blocks' LayerNorms (torch's default, fixed in diffusers).</summary>
    public const float LayerNormEps = 1e-5f;

    private static readonly DownBlockType[] SdDownBlocks =
        [DownBlockType.CrossAttnDownBlock2D, DownBlockType.CrossAttnDownBlock2D, DownBlockType.CrossAttnDownBlock2D, DownBlockType.DownBlock2D];
    private static readonly UpBlockType[] SdUpBlocks =
        [UpBlockType.UpBlock2D, UpBlockType.CrossAttnUpBlock2D, UpBlockType.CrossAttnUpBlock2D, UpBlockType.CrossAttnUpBlock2D];

    /// <summary>Tango's music UNet (configs/diffusion_model_config.json; spec §2.2): 8-channel latents, T5-large context.</summary>
    public static UNetConfig TangoMusic { get; } = new(8, 8, [320, 640, 1280, 1280], 2, SdDownBlocks, SdUpBlocks,
        [5, 10, 20, 20], 1024, UseLinearProjection: true, UpcastAttention: true);

    /// <summary>Stable Diffusion 2.1 (768-v) UNet, MeLFusion's image UNet (spec §3.1).</summary>
    public static UNetConfig StableDiffusion21 { get; } = TangoMusic with { InChannels = 4, OutChannels = 4 };

    /// <summary>Stable Diffusion 1.5 UNet (spec §3.2): 8 heads per block, CLIP-L context, 1x1-conv projections.</summary>
    public static UNetConfig StableDiffusion15 { get; } = new(4, 4, [320, 640, 1280, 1280], 2, SdDownBlocks, SdUpBlocks,
        [8, 8, 8, 8], 768, UseLinearProjection: false);

    public int Levels => BlockOutChannels.Length;

    /// <summary>Channels of the time embedding (4 × the first level's channels).</summary>
    public int TimeEmbedDim => 4 * BlockOutChannels[0];

    /// <summary>How much the down path shrinks the latent: sample height and width must be multiples of it.</summary>
    public int DownsampleFactor => 1 << (Levels - 1);

    /// <summary>Resnets (and, in cross-attention blocks, transformers) per up block.</summary>
    public int UpLayersPerBlock => LayersPerBlock + 1;

    /// <summary>Heads of the mid block's transformer.</summary>
    public int MidHeads => AttentionHeads[^1];

    /// <summary>Heads of up block <paramref name="block"/>'s transformers.</summary>
    public int UpHeads(int block) => AttentionHeads[Levels - 1 - block];

    /// <summary>Channels of up block <paramref name="block"/>'s output.</summary>
    public int UpChannels(int block) => BlockOutChannels[Levels - 1 - block];

    /// <summary>Whether up block <paramref name="block"/> has a transformer (with its cross-attention) at <paramref name="attention"/>.</summary>
    public bool HasUpCrossAttention(int block, int attention) =>
        block >= 0 && block < Levels && UpBlockTypes[block] == UpBlockType.CrossAttnUpBlock2D
        && attention >= 0 && attention < UpLayersPerBlock;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first inconsistency.</summary>
    public void Validate()
    {
        int levels = Levels;
        if (levels == 0) throw Invalid("block_out_channels is empty");
        if (DownBlockTypes.Length != levels || UpBlockTypes.Length != levels || AttentionHeads.Length != levels)
            throw Invalid($"{levels} block_out_channels need as many down blocks ({DownBlockTypes.Length}), up blocks "
                + $"({UpBlockTypes.Length}) and attention heads ({AttentionHeads.Length})");
        if (InChannels <= 0 || OutChannels <= 0 || LayersPerBlock <= 0 || CrossAttentionDim <= 0 || NormGroups <= 0)
            throw Invalid("in/out channels, layers_per_block, cross_attention_dim and norm groups must be positive");
        for (int i = 0; i < levels; i++)
        {
            int channels = BlockOutChannels[i], heads = AttentionHeads[i];
            if (channels <= 0 || channels % NormGroups != 0)
                throw Invalid($"level {i} has {channels} channels, not a positive multiple of {NormGroups} norm groups");
            if (heads <= 0 || channels % heads != 0)
                throw Invalid($"level {i} has {channels} channels, not divisible into {heads} attention heads");
        }
    }

    /// <summary>
    /// Reads a diffusers UNet2DConditionModel config.json. Missing keys take diffusers' defaults; options outside
    /// the supported subset (class embeddings, dual or only cross-attention, other activations or block kinds, ...)
    /// are rejected with the key named.
    /// </summary>
    public static UNetConfig FromDiffusersJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("config is not a JSON object");

        Require(root, "act_fn", "silu");
        Require(root, "center_input_sample", false);
        Require(root, "dual_cross_attention", false);
        Require(root, "only_cross_attention", false);
        Require(root, "downsample_padding", 1);
        Require(root, "mid_block_scale_factor", 1);
        Require(root, "mid_block_type", "UNetMidBlock2DCrossAttn");
        Require(root, "resnet_time_scale_shift", "default");
        Require(root, "time_embedding_type", "positional");
        foreach (string key in new[] { "num_class_embeds", "class_embed_type", "addition_embed_type", "encoder_hid_dim" })
            if (root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null)
                throw Invalid($"'{key}' = {v.GetRawText()} is not supported");

        int[] blocks = IntArray(root, "block_out_channels") ?? [320, 640, 1280, 1280];
        int[] heads = root.TryGetProperty("attention_head_dim", out var h) && h.ValueKind == JsonValueKind.Number
            ? Enumerable.Repeat(h.GetInt32(), blocks.Length).ToArray()
            : IntArray(root, "attention_head_dim") ?? Enumerable.Repeat(8, blocks.Length).ToArray();
        var config = new UNetConfig(
            Int(root, "in_channels", 4),
            Int(root, "out_channels", 4),
            blocks,
            Int(root, "layers_per_block", 2),
            Names<DownBlockType>(root, "down_block_types") ?? SdDownBlocks,
            Names<UpBlockType>(root, "up_block_types") ?? SdUpBlocks,
            heads,
            Int(root, "cross_attention_dim", 1280),
            Bool(root, "use_linear_projection", false),
            Int(root, "norm_num_groups", 32),
            (float)Number(root, "norm_eps", 1e-5),
            Bool(root, "flip_sin_to_cos", true),
            (float)Number(root, "freq_shift", 0),
            Bool(root, "upcast_attention", false));
        config.Validate();
        return config;
    }

    private static void Require(JsonElement root, string key, object expected)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return;
        bool ok = expected switch
        {
            string s => v.ValueKind == JsonValueKind.String && v.GetString() == s,
            bool b => v.ValueKind is JsonValueKind.True or JsonValueKind.False && v.GetBoolean() == b,
            int n => v.ValueKind == JsonValueKind.Number && v.GetDouble() == n,
            _ => false,
        };
        string allowed = expected switch { string s => $"\"{s}\"", bool b => b ? "true" : "false", _ => $"{expected}" };
        if (!ok) throw Invalid($"'{key}' = {v.GetRawText()} is not supported (only {allowed})");
    }

    private static int Int(JsonElement root, string key, int fallback) =>
        root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v.GetInt32() : fallback;

    private static double Number(JsonElement root, string key, double fallback) =>
        root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v.GetDouble() : fallback;

    private static bool Bool(JsonElement root, string key, bool fallback) =>
        root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v.GetBoolean() : fallback;

    private static int[]? IntArray(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;

    private static T[]? Names<T>(JsonElement root, string key) where T : struct, Enum
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind != JsonValueKind.Array) return null;
        return v.EnumerateArray().Select(e =>
        {
            string name = e.GetString() ?? "";
            return Enum.GetNames<T>().Contains(name) ? Enum.Parse<T>(name) : throw Invalid($"'{key}' entry '{name}' is not supported");
        }).ToArray();
    }

    private static ArgumentException Invalid(string message) => new($"unet config: {message}");
}
