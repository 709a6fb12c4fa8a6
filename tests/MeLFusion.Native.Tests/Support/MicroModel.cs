using MeLFusion.Native.Pipelines;

namespace MeLFusion.Native.Tests.Support;

/// <summary>The tiny model's structure at a few channels per layer: whole-system tests that run in seconds.</summary>
public static class MicroModel
{
    public static MelFusionModelConfig Config { get; } = MelFusionModelConfig.Tiny with
    {
        MusicUnet = MelFusionModelConfig.Tiny.MusicUnet with { BlockOutChannels = [8, 8, 16, 16], AttentionHeads = [1, 1, 2, 2], NormGroups = 4, LayersPerBlock = 1, CrossAttentionDim = 16 },
        ImageUnet = MelFusionModelConfig.Tiny.ImageUnet with { BlockOutChannels = [8, 8, 16, 16], AttentionHeads = [1, 1, 2, 2], NormGroups = 4, LayersPerBlock = 1, CrossAttentionDim = 16 },
        TextEncoder = MelFusionModelConfig.Tiny.TextEncoder with { VocabSize = 200, ModelDim = 16, KeyValueDim = 8, Heads = 2, Layers = 1, FeedForwardDim = 32 },
    };

    /// <summary>The test tokenizer (tests/fixtures/tokenizer/spiece.model).</summary>
    public static string Tokenizer => Path.Combine(Fixture.Directory, "tokenizer", "spiece.model");
}
