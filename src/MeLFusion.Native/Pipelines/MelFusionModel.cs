using System.Text.Json;
using System.Text.Json.Serialization;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Pipelines;

/// <summary>
/// Everything a weights directory declares in its <c>model.json</c>: the configuration of each part of the system and
/// whether the weights were trained. The files beside it have fixed names (see <see cref="MelFusionModel"/>).
/// </summary>
public sealed record MelFusionModelConfig(
    string Description,
    bool Trained,
    T5Config TextEncoder,
    int MaxTextTokens,
    UNetConfig MusicUnet,
    UNetConfig ImageUnet,
    AutoencoderKlConfig MusicVae,
    AutoencoderKlConfig ImageVae,
    HifiGanConfig Vocoder,
    int SampleRate,
    int ImageSize)
{
    public const string FileName = "model.json";

    /// <summary>
    /// A small stand-in with the real system's structure (T5 encoder, 4-level music and image UNets, ×4 music VAE on
    /// 64 mel bins, ×8 image VAE, HiFi-GAN at hop 160 for 16 kHz), cheap enough to run faster than real time on two
    /// cores: the music UNet has no transformers at its widest level, whose self-attention over 4096 latent tokens
    /// took 60% of a diffusion step, so the synapse feeds its up blocks 1 and 2 (the image UNet keeps all three).
    /// </summary>
    public static MelFusionModelConfig Tiny { get; } = new(
        Description: "MeLFusion tiny (structure of the full system at a small width)",
        Trained: false,
        TextEncoder: new T5Config(VocabSize: 1000, ModelDim: 64, KeyValueDim: 16, Heads: 4, Layers: 2, FeedForwardDim: 128),
        MaxTextTokens: 64,
        MusicUnet: UNetConfig.TangoMusic with
        {
            BlockOutChannels = [32, 64, 64, 64], AttentionHeads = [2, 4, 4, 4], CrossAttentionDim = 64, NormGroups = 8,
            DownBlockTypes = [DownBlockType.DownBlock2D, DownBlockType.CrossAttnDownBlock2D, DownBlockType.CrossAttnDownBlock2D, DownBlockType.DownBlock2D],
            UpBlockTypes = [UpBlockType.UpBlock2D, UpBlockType.CrossAttnUpBlock2D, UpBlockType.CrossAttnUpBlock2D, UpBlockType.UpBlock2D],
        },
        ImageUnet: UNetConfig.StableDiffusion21 with
        {
            BlockOutChannels = [32, 64, 64, 64], AttentionHeads = [2, 4, 4, 4], CrossAttentionDim = 64, NormGroups = 8,
        },
        MusicVae: AutoencoderKlConfig.AudioLdmMusic with { BaseChannels = 16, ResBlocks = 1, Groups = 8 },
        ImageVae: AutoencoderKlConfig.StableDiffusion with { BaseChannels = 16, ChannelMultipliers = [1, 2, 2, 2], ResBlocks = 1, Groups = 8 },
        Vocoder: HifiGanConfig.AudioLdm16k with { UpsampleInitialChannel = 64 },
        SampleRate: 16000,
        ImageSize: 128);

    public static IReadOnlyDictionary<string, MelFusionModelConfig> Presets { get; } =
        new Dictionary<string, MelFusionModelConfig>(StringComparer.Ordinal) { ["tiny"] = Tiny };

    /// <summary>Mel frames per second of audio: the vocoder's hop at the sample rate.</summary>
    public double MelFramesPerSecond => (double)SampleRate / Vocoder.HopLength;

    /// <summary>Checks that the parts fit together; the message names the mismatching settings.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{source}: {what}");
        }
        int d = TextEncoder.ModelDim;
        Require(MusicUnet.CrossAttentionDim == d, $"music_unet.cross_attention_dim {MusicUnet.CrossAttentionDim} differs from text_encoder.model_dim {d}");
        Require(ImageUnet.CrossAttentionDim == d, $"image_unet.cross_attention_dim {ImageUnet.CrossAttentionDim} differs from text_encoder.model_dim {d}");
        Require(MusicUnet.InChannels == MusicVae.LatentChannels, $"music_unet.in_channels {MusicUnet.InChannels} differs from music_vae.latent_channels {MusicVae.LatentChannels}");
        Require(ImageUnet.InChannels == ImageVae.LatentChannels, $"image_unet.in_channels {ImageUnet.InChannels} differs from image_vae.latent_channels {ImageVae.LatentChannels}");
        Require(Vocoder.MelChannels % MusicVae.Downsampling == 0, $"vocoder.mel_channels {Vocoder.MelChannels} is not a multiple of the music VAE's downsampling {MusicVae.Downsampling}");
        Require(ImageSize % (ImageVae.Downsampling * ImageUnet.DownsampleFactor) == 0, $"image_size {ImageSize} is not a multiple of {ImageVae.Downsampling * ImageUnet.DownsampleFactor}");
        Require(MaxTextTokens >= 1, "max_text_tokens must be at least 1");
        Require(SampleRate > 0, "sample_rate must be positive");
    }

    public static MelFusionModelConfig Read(string path)
    {
        try
        {
            var config = JsonSerializer.Deserialize(File.ReadAllText(path), ModelConfigJson.Default.MelFusionModelConfig)
                ?? throw new InvalidDataException($"{path}: empty model configuration");
            config.Validate(path);
            return config;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid model configuration: {e.Message}");
        }
    }

    public void Write(string path) =>
        IO.AtomicFile.Write(path, f => JsonSerializer.Serialize(f, this, ModelConfigJson.Default.MelFusionModelConfig));
}

[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(MelFusionModelConfig))]
internal sealed partial class ModelConfigJson : JsonSerializerContext;

/// <summary>
/// A loaded MeLFusion system on one backend: the configuration, the tokenizer and one <see cref="WeightSet"/> per
/// part, read from a weights directory holding <c>model.json</c>, <c>spiece.model</c> and one safetensors file per
/// <see cref="WeightPart"/>.
/// </summary>
public sealed class MelFusionModel : IDisposable
{
    public const string TokenizerFile = "spiece.model";

    private readonly List<WeightSet> _owned = [];

    private MelFusionModel(string directory, IBackend backend, MelFusionModelConfig config)
    {
        Directory = directory;
        Backend = backend;
        Config = config;
        try
        {
            Tokenizer = SentencePieceTokenizer.Load(Path.Combine(directory, TokenizerFile));
            TextEncoder = Open(WeightPart.TextEncoder);
            MusicUnet = Open(WeightPart.MusicUnet);
            ImageUnet = Open(WeightPart.ImageUnet);
            MusicVae = Open(WeightPart.MusicVae);
            ImageVae = Open(WeightPart.ImageVae);
            Vocoder = Open(WeightPart.Vocoder);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }
    public IBackend Backend { get; }
    public MelFusionModelConfig Config { get; }
    public SentencePieceTokenizer Tokenizer { get; } = null!;
    public WeightSet TextEncoder { get; } = null!;
    public WeightSet MusicUnet { get; } = null!;
    public WeightSet ImageUnet { get; } = null!;
    public WeightSet MusicVae { get; } = null!;
    public WeightSet ImageVae { get; } = null!;
    public WeightSet Vocoder { get; } = null!;

    /// <summary>Opens the weights directory <paramref name="directory"/> on <paramref name="backend"/>.</summary>
    public static MelFusionModel Load(string directory, IBackend backend)
    {
        string configPath = Path.Combine(directory, MelFusionModelConfig.FileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{directory}: no {MelFusionModelConfig.FileName}: not a MeLFusion weights directory", configPath);
        return new MelFusionModel(directory, backend, MelFusionModelConfig.Read(configPath));
    }

    private WeightSet Open(WeightPart part)
    {
        var set = new WeightSet(Backend, Path.Combine(Directory, part.FileName()));
        _owned.Add(set);
        return set;
    }

    public void Dispose()
    {
        foreach (var set in _owned) set.Dispose();
        _owned.Clear();
    }
}
