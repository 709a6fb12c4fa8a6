using System.Text.Json;
using System.Text.Json.Serialization;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Classifier;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training.Data;
using MeLFusion.Native.Training.Tasks;

namespace MeLFusion.Native.Training;

/// <summary>
/// A run as a file (snake_case JSON; the <c>train</c> command's flags override it): which model kind, the system it
/// belongs to, the data, the optimizer and loss settings and the cadence. Relative paths resolve against the file.
/// The <c>attribute-classifier</c> (for evaluation) is no part of the system: it reads no model directory, and its
/// weights are a file of their own (<see cref="AttributeClassifier.FileName"/>).
/// </summary>
public sealed record TrainingConfig
{
    public static readonly string[] Kinds =
        ["t2m-unet", "t2i-unet", "music-vae", "image-vae", "vocoder", "text-encoder", AttributeClassifierTask.KindName];

    public string Kind { get; init; } = "t2m-unet";
    /// <summary>The weights directory whose model.json and frozen parts the run uses.</summary>
    public string Model { get; init; } = "weights";
    /// <summary>Start the trained part from a fresh initialisation instead of the directory's weights.</summary>
    public bool FromScratch { get; init; }
    /// <summary>
    /// A from-scratch t2m-unet's visual-synapse alphas start here (mix weight f = tanh(a/2)/5). MeLFusion's 0 makes
    /// the fine-tuned model exactly Tango at first; from scratch there is no Tango to keep, and a nonzero start lets
    /// the UNet learn to read the image from the first step instead of waiting for f to grow.
    /// </summary>
    public float SynapseAlphaInit { get; init; }
    public string? TrainManifest { get; init; }
    public string? ValidationManifest { get; init; }
    public int ValidationBatches { get; init; } = 4;
    /// <summary>Procedural examples instead of manifests (smoke runs): their count, 0 to use the manifests.</summary>
    public int SyntheticExamples { get; init; }
    public int BatchSize { get; init; } = 1;
    public double ClipSeconds { get; init; } = 10.24;
    public BadDataPolicy BadData { get; init; } = BadDataPolicy.Skip;
    public bool TrainOnlyAlpha { get; init; }
    /// <summary>Train only the tensors under these name prefixes (empty: all, unless <see cref="TrainOnlyAlpha"/>).</summary>
    public string[] TrainOnly { get; init; } = [];
    public TrainingOptions Optimizer { get; init; } = new();
    public TaskSettings Loss { get; init; } = new();
    /// <summary>The attribute classifier's architecture when it starts fresh.</summary>
    public AttributeClassifierConfig Classifier { get; init; } = new();
    /// <summary>Attribute classifier weights to start from (their file's configuration replaces <see cref="Classifier"/>); null: fresh.</summary>
    public string? ClassifierWeights { get; init; }
    /// <summary>
    /// The UNets (t2m-unet, t2i-unet): a directory where the frozen parts' features of each example (VAE latents, text
    /// states) are kept after their first computation, so that later steps skip the frozen encoders; null: none.
    /// </summary>
    public string? FeatureCache { get; init; }
    public int LogEvery { get; init; } = 10;
    public int ValidateEvery { get; init; } = 100;
    public int CheckpointEvery { get; init; } = 100;

    [JsonIgnore]
    public bool IsClassifier => Kind == AttributeClassifierTask.KindName;

    /// <summary>The file name the trained model is exported under: its weights part's, or the classifier's.</summary>
    [JsonIgnore]
    public string ExportFileName => IsClassifier ? AttributeClassifier.FileName : Part.FileName();

    [JsonIgnore]
    public WeightPart Part => Kind switch
    {
        "t2m-unet" => WeightPart.MusicUnet,
        "t2i-unet" => WeightPart.ImageUnet,
        "music-vae" => WeightPart.MusicVae,
        "image-vae" => WeightPart.ImageVae,
        "vocoder" => WeightPart.Vocoder,
        "text-encoder" => WeightPart.TextEncoder,
        AttributeClassifierTask.KindName => throw new InvalidOperationException("training: the attribute classifier is no part of the system"),
        _ => throw new ArgumentException($"training: unknown model kind '{Kind}' (one of {string.Join(", ", Kinds)})"),
    };

    [JsonIgnore]
    public ParameterSelection Selection =>
        TrainOnlyAlpha ? ParameterSelection.OnlyAlpha : TrainOnly.Length > 0 ? ParameterSelection.Prefixes(TrainOnly) : ParameterSelection.All;

    [JsonIgnore]
    public RunCadence Cadence => new(LogEvery, ValidateEvery, CheckpointEvery);

    public void Validate()
    {
        if (!Kinds.Contains(Kind)) throw new ArgumentException($"training: unknown model kind '{Kind}' (one of {string.Join(", ", Kinds)})");
        if (TrainOnlyAlpha && Kind != "t2m-unet") throw new ArgumentException("training: only the t2m-unet has visual-synapse alphas to train");
        if (SynapseAlphaInit != 0 && (Kind != "t2m-unet" || !FromScratch))
            throw new ArgumentException($"training: synapse alpha init {SynapseAlphaInit} needs a t2m-unet trained from scratch (the alphas of a loaded UNet are its own)");
        if (!float.IsFinite(SynapseAlphaInit)) throw new ArgumentException($"training: synapse alpha init must be finite, got {SynapseAlphaInit}");
        if (TrainOnlyAlpha && TrainOnly.Length > 0) throw new ArgumentException("training: give either train-only-alpha or train-only prefixes, not both");
        if (BatchSize < 1) throw new ArgumentException($"training: batch size must be at least 1, got {BatchSize}");
        if (!(ClipSeconds > 0)) throw new ArgumentException($"training: clip seconds must be positive, got {ClipSeconds}");
        if (SyntheticExamples < 0) throw new ArgumentException($"training: synthetic examples must not be negative, got {SyntheticExamples}");
        if (SyntheticExamples == 0 && TrainManifest is null) throw new ArgumentException("training: no train manifest (or synthetic examples) given");
        if (LogEvery < 0 || ValidateEvery < 0 || CheckpointEvery < 0)
            throw new ArgumentException($"training: log, validation and checkpoint intervals must not be negative ({LogEvery}, {ValidateEvery}, {CheckpointEvery})");
        if (ValidationBatches < 0) throw new ArgumentException($"training: validation batches must not be negative, got {ValidationBatches}");
        if (IsClassifier && SyntheticExamples > 0)
            throw new ArgumentException("training: the attribute classifier learns from manifest attributes; procedural examples have none");
        if (FeatureCache is not null && Kind is not ("t2m-unet" or "t2i-unet"))
            throw new ArgumentException($"training: a feature cache holds the frozen inputs of the UNets (t2m-unet, t2i-unet), not of a {Kind}");
        if (!IsClassifier && ClassifierWeights is not null) throw new ArgumentException($"training: classifier weights are for the attribute classifier, not a {Kind}");
        if (IsClassifier) Classifier.Validate();
        Optimizer.Validate();
        Loss.Validate();
    }

    public static TrainingConfig Read(string path)
    {
        try
        {
            var config = JsonSerializer.Deserialize(File.ReadAllText(path), TrainingConfigJson.Default.TrainingConfig)
                ?? throw new InvalidDataException($"{path}: empty training configuration");
            string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
            string? Resolve(string? p) => p is null ? null : System.IO.Path.GetFullPath(p, directory);
            return config with
            {
                Model = Resolve(config.Model)!, TrainManifest = Resolve(config.TrainManifest), ValidationManifest = Resolve(config.ValidationManifest),
                ClassifierWeights = Resolve(config.ClassifierWeights), FeatureCache = Resolve(config.FeatureCache),
            };
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid training configuration: {e.Message}");
        }
    }

    public void Write(string path) =>
        IO.AtomicFile.Write(path, f => JsonSerializer.Serialize(f, this, TrainingConfigJson.Default.TrainingConfig));

    /// <summary>
    /// Loads the system on <paramref name="backend"/> and builds the task: the trained part from
    /// <paramref name="checkpoint"/> when resuming, else fresh (<see cref="FromScratch"/>) or from the model directory.
    /// </summary>
    public ITrainingTask CreateTask(IBackend backend, string? checkpoint = null)
    {
        Validate();
        if (IsClassifier) return CreateClassifierTask(backend, checkpoint);
        var model = MelFusionModel.Load(Model, backend);
        WeightSet? trained = null;
        try
        {
            trained = checkpoint is not null ? new WeightSet(backend, checkpoint)
                : FromScratch ? WeightSet.Initialize(backend, Optimizer.Seed, SynapseAlphaInit)
                : WeightSet.OpenOrInitialize(backend, Optimizer.Seed, System.IO.Path.Combine(Model, Part.FileName()));
            var data = CreateData(model.Config);
            var cache = FeatureCache is null ? null : new FeatureCacheSettings(FeatureCache, DataIdentity());
            return Kind switch
            {
                "t2m-unet" => new TextToMusicTask(model, trained, data, Loss with { Seed = Optimizer.Seed }, cache),
                "t2i-unet" => new TextToImageTask(model, trained, data, Loss with { Seed = Optimizer.Seed }, cache),
                "music-vae" => new MusicVaeTask(model, trained, data, Loss with { Seed = Optimizer.Seed }),
                "image-vae" => new ImageVaeTask(model, trained, data, Loss with { Seed = Optimizer.Seed }),
                "vocoder" => new VocoderTask(model, trained, data, Loss with { Seed = Optimizer.Seed }),
                _ => new TextEncoderTask(model, trained, data, Loss with { Seed = Optimizer.Seed }),
            };
        }
        catch
        {
            trained?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The attribute classifier: its configuration from the weights it starts from (else <see cref="Classifier"/>),
    /// every manifest example's labels checked before the first step, clips at the classifier's sample rate.
    /// </summary>
    private AttributeClassifierTask CreateClassifierTask(IBackend backend, string? checkpoint)
    {
        var config = ClassifierWeights is not null ? AttributeClassifier.ReadConfig(ClassifierWeights) : Classifier;
        var options = LoaderOptions(config.SampleRate, images: false);
        var read = ManifestBatches.ManifestOptionsFor(options);
        var train = Manifest.Read(TrainManifest!, read);
        var validation = ValidationManifest is not null && ValidationBatches > 0 ? Manifest.Read(ValidationManifest, read) : null;
        foreach (var example in train.Examples.Concat(validation?.Examples ?? [])) AttributeLabels.Of(example);
        var data = ManifestBatches.Open(train, validation, ValidationBatches, options);
        WeightSet? trained = null;
        try
        {
            trained = checkpoint is not null ? new WeightSet(backend, checkpoint)
                : ClassifierWeights is not null ? new WeightSet(backend, ClassifierWeights)
                : WeightSet.Initialize(backend, Optimizer.Seed);
            return new AttributeClassifierTask(config, trained, data);
        }
        catch
        {
            trained?.Dispose();
            data.Dispose();
            throw;
        }
    }

    private DataLoaderOptions LoaderOptions(int sampleRate, bool images, int imageSize = 0) => new()
    {
        BatchSize = BatchSize,
        Seed = Optimizer.Seed,
        BadData = BadData,
        Audio = new AudioClipFormat(sampleRate, (int)Math.Round(ClipSeconds * sampleRate), AudioClipFormat.SpecPeak),
        Images = images ? new ImageInput(imageSize) : null,
    };

    /// <summary>What the examples come from, for the feature cache's version: the manifests' content, or the procedural set.</summary>
    private string DataIdentity()
    {
        if (SyntheticExamples > 0) return $"synthetic {SyntheticExamples} examples, seed {Optimizer.Seed}";
        var manifests = new[] { TrainManifest!, ValidationManifest }.OfType<string>();
        return string.Join("\n", manifests.Select(m =>
        {
            using var stream = File.OpenRead(m);
            return $"{System.IO.Path.GetFullPath(m)} sha256 {Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream))}";
        }));
    }

    private IBatchSource CreateData(MelFusionModelConfig model)
    {
        int samples = (int)Math.Round(ClipSeconds * model.SampleRate);
        bool images = Kind is "t2m-unet" or "t2i-unet" or "image-vae";
        int imageSize = images ? model.ImageSize : 0;
        if (SyntheticExamples > 0)
            return new SyntheticBatches(BatchSize, samples, imageSize, SyntheticExamples, ValidationBatches, Optimizer.Seed, model.SampleRate);
        return ManifestBatches.Open(TrainManifest!, ValidationManifest, ValidationBatches, LoaderOptions(model.SampleRate, images, imageSize));
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, UseStringEnumConverter = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
[JsonSerializable(typeof(TrainingConfig))]
internal sealed partial class TrainingConfigJson : JsonSerializerContext;
