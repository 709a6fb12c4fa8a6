using System.Text.Json;
using System.Text.Json.Serialization;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training.Tasks;

namespace MeLFusion.Native.Models.Classifier;

/// <summary>
/// Hyper-parameters of an <see cref="AttributeClassifier"/>: its mel front end (the system's: 16 kHz, 64 bands,
/// hop 160), the channels of each stride-2 conv stage, the group-norm groups and the embedding width.
/// </summary>
public sealed record AttributeClassifierConfig
{
    public int SampleRate { get; init; } = 16000;
    public int MelBands { get; init; } = 64;
    public int HopLength { get; init; } = 160;
    public int[] Channels { get; init; } = [16, 32, 64, 128];
    public int Groups { get; init; } = 8;
    public int EmbeddingDim { get; init; } = 128;

    /// <summary>Mel bands left after the stages halve them (rounding up, as a 3×3 stride-2 convolution with padding 1 does).</summary>
    public int PooledBands => Channels.Aggregate(MelBands, (bands, _) => (bands + 1) / 2);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (SampleRate <= 0 || MelBands <= 0 || HopLength <= 0)
            throw new ArgumentException($"attribute classifier: sample rate {SampleRate}, mel bands {MelBands} and hop {HopLength} must be positive");
        if (Channels is not { Length: > 0 }) throw new ArgumentException("attribute classifier: give the channels of at least one stage");
        if (Groups <= 0 || Channels.Any(c => c <= 0 || c % Groups != 0))
            throw new ArgumentException($"attribute classifier: stage channels [{string.Join(", ", Channels ?? [])}] must be positive multiples of the {Groups} groups");
        if (EmbeddingDim <= 0) throw new ArgumentException($"attribute classifier: embedding dim must be positive, got {EmbeddingDim}");
    }

    public string ToJson() => JsonSerializer.Serialize(this, ClassifierConfigJson.Default.AttributeClassifierConfig);

    public static AttributeClassifierConfig FromJson(string json, string source)
    {
        try
        {
            var config = JsonSerializer.Deserialize(json, ClassifierConfigJson.Default.AttributeClassifierConfig)
                ?? throw new InvalidDataException($"{source}: empty attribute classifier configuration");
            config.Validate();
            return config;
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new InvalidDataException($"{source}: invalid attribute classifier configuration: {e.Message}", e);
        }
    }
}

/// <summary>The classifier's outputs for a batch: the embedding [B, EmbeddingDim] and one logit row set [B, classes] per head.</summary>
public sealed record AttributeClassifierOutputs(Value Embedding, IReadOnlyList<Value> Logits);

/// <summary>
/// Predicts genre, mood, tempo feel and lead-instrument family (<see cref="AttributeHeads"/>) from audio, for evaluating
/// generated music. The log-mel of the clip ([B, 1, bands, frames], standardised per clip by a one-group group norm)
/// goes through stages of a 3×3 stride-2 convolution and a 3×3 convolution, each followed by group norm and SiLU;
/// the result is averaged over time only, because where energy sits in frequency carries register and timbre, then
/// flattened and projected to the embedding (linear + SiLU), which the Fréchet distance compares; a linear head per
/// attribute gives the logits. Weights are named <c>classifier.*</c> and live in their own file
/// (<see cref="FileName"/>) whose metadata holds the configuration.
/// </summary>
public sealed class AttributeClassifier(AttributeClassifierConfig config) : IDisposable
{
    public const string FileName = "attribute_classifier.safetensors";
    public const string ConfigMetadataKey = "attribute_classifier_config";

    public AttributeClassifierConfig Config { get; } = Validated(config);

    private readonly MelFrontEnd _mel = new(config.SampleRate, config.MelBands, config.HopLength);

    /// <summary>Appends the classifier of <paramref name="wave"/> [B, samples] (at the config's sample rate) to <paramref name="g"/>.</summary>
    public AttributeClassifierOutputs Build(GraphBuilder g, WeightSet weights, Value wave)
    {
        var c = Config;
        if (wave.Shape.Rank != 2) throw new ArgumentException($"attribute classifier: the audio must be [batch, samples], got {wave.Shape}");
        int batch = wave.Shape[0];
        var mel = _mel.LogMel(g, weights.Backend, wave);                                   // [B, bands, frames]
        var h = g.Reshape(mel, batch, 1, c.MelBands, mel.Shape[2]);
        h = g.GroupNorm(h, weights.Constant(g, "classifier.input_norm.weight", 1), weights.Constant(g, "classifier.input_norm.bias", 1), groups: 1);
        int channels = 1;
        for (int s = 0; s < c.Channels.Length; s++)
        {
            string stage = $"classifier.stages.{s}";
            h = ConvNormSilu(g, weights, stage + ".down", stage + ".norm1", h, channels, c.Channels[s], stride: 2);
            h = ConvNormSilu(g, weights, stage + ".conv", stage + ".norm2", h, c.Channels[s], c.Channels[s], stride: 1);
            channels = c.Channels[s];
        }
        int bands = h.Shape[2], frames = h.Shape[3];
        var overTime = g.Scale(g.SumTo(h, [batch, channels, bands, 1]), 1f / frames);
        var features = g.Reshape(overTime, batch, channels * bands);
        var embedding = g.Silu(g.Linear(features,
            weights.Constant(g, "classifier.embedding.weight", c.EmbeddingDim, channels * bands), weights.Constant(g, "classifier.embedding.bias", c.EmbeddingDim)));
        var logits = AttributeHeads.All.Select(head => g.Linear(embedding,
            weights.Constant(g, $"classifier.heads.{head.Name}.weight", head.Classes.Count, c.EmbeddingDim),
            weights.Constant(g, $"classifier.heads.{head.Name}.bias", head.Classes.Count))).ToArray();
        return new AttributeClassifierOutputs(embedding, logits);
    }

    private Value ConvNormSilu(GraphBuilder g, WeightSet weights, string conv, string norm, Value x, int inChannels, int outChannels, int stride)
    {
        var h = g.Conv2d(x, weights.Constant(g, conv + ".weight", outChannels, inChannels, 3, 3), weights.Constant(g, conv + ".bias", outChannels),
            stride: stride, padding: 1);
        return g.GroupNorm(h, weights.Constant(g, norm + ".weight", outChannels), weights.Constant(g, norm + ".bias", outChannels), Config.Groups, silu: true);
    }

    /// <summary>The metadata a classifier weights file carries: its configuration as JSON.</summary>
    public static IReadOnlyDictionary<string, string> Metadata(AttributeClassifierConfig config) =>
        new Dictionary<string, string> { [ConfigMetadataKey] = config.ToJson() };

    /// <summary>The configuration stored in a classifier weights file (<see cref="Metadata"/>).</summary>
    /// <exception cref="InvalidDataException">The file has no or an invalid configuration.</exception>
    public static AttributeClassifierConfig ReadConfig(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Metadata.TryGetValue(ConfigMetadataKey, out var json)
            ? AttributeClassifierConfig.FromJson(json, path)
            : throw new InvalidDataException($"{path}: no '{ConfigMetadataKey}' metadata: not an attribute classifier (train one with `train attribute-classifier`)");
    }

    /// <summary>Writes a freshly initialised classifier (seeded by <paramref name="seed"/>) to <paramref name="path"/>.</summary>
    public static void Initialize(AttributeClassifierConfig config, IBackend backend, ulong seed, string path)
    {
        using var weights = WeightSet.Initialize(backend, seed);
        using var classifier = new AttributeClassifier(config);
        var g = new GraphBuilder();
        classifier.Build(g, weights, g.Input("audio", DType.F32, 1, config.SampleRate));
        weights.Save(path, Metadata(config));
    }

    private static AttributeClassifierConfig Validated(AttributeClassifierConfig config)
    {
        config.Validate();
        return config;
    }

    public void Dispose() => _mel.Dispose();
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(AttributeClassifierConfig))]
internal sealed partial class ClassifierConfigJson : JsonSerializerContext;
