using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Models.Classifier;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Evaluation;

/// <summary>How the music is conditioned in an evaluation run.</summary>
public enum GenerationSetting
{
    /// <summary>The test item's caption and image (MeLFusion).</summary>
    TextAndImage,
    /// <summary>The caption alone (the text-to-music baseline; same seed, so the same initial noise).</summary>
    TextOnly,
}

/// <summary>What <see cref="AttributeEvaluation"/> evaluates and how it generates.</summary>
public sealed record AttributeEvaluationOptions
{
    public required string ModelDirectory { get; init; }
    /// <summary>The attribute classifier's weights file.</summary>
    public required string Classifier { get; init; }
    /// <summary>The test manifest: captions, audio, images and attributes (a synthetic dataset's test.jsonl).</summary>
    public required string TestManifest { get; init; }
    /// <summary>Test items to generate for (the first ones of the manifest); at least 2, for a covariance.</summary>
    public int Count { get; init; } = 16;
    public int Steps { get; init; } = GenerationRequest.DefaultSteps;
    /// <summary>Item i is generated with seed <c>Seed + i</c> in both settings.</summary>
    public ulong Seed { get; init; }
    /// <summary>Length of the generated music and of the real clips the classifier compares it with.</summary>
    public double Seconds { get; init; } = 10.24;
    public float GuidanceScale { get; init; } = GenerationRequest.DefaultGuidance;
    public SamplerKind Sampler { get; init; } = GenerationRequest.DefaultSampler;
    public SynapseMode Synapse { get; init; } = SynapseMode.Paper;
    public int InversionSteps { get; init; } = GenerationRequest.DefaultInversionSteps;
    /// <summary>Clips per classifier run.</summary>
    public int ClassifierBatch { get; init; } = 8;
    /// <summary>The command line that ran the evaluation, quoted in the report (null: none).</summary>
    public string? Command { get; init; }

    public void Validate()
    {
        if (Count < 2) throw new ArgumentException($"evaluate: --count must be at least 2 (a Fréchet distance needs a covariance), got {Count}");
        if (Steps < 1) throw new ArgumentException($"evaluate: steps must be at least 1, got {Steps}");
        if (!(Seconds > 0)) throw new ArgumentException($"evaluate: seconds must be positive, got {Seconds}");
        if (ClassifierBatch < 1) throw new ArgumentException($"evaluate: the classifier batch must be at least 1, got {ClassifierBatch}");
    }
}

/// <summary>Where an evaluation is: the stage, and items done of the stage's total.</summary>
public readonly record struct EvaluationProgress(string Stage, int Done, int Total);

/// <summary>
/// Evaluates text (+ image) → music with the attribute classifier: its accuracy on the real test clips; for the first
/// <see cref="AttributeEvaluationOptions.Count"/> test items, music generated with caption and image and with the
/// caption alone (same seed), and how often the classifier hears the requested attributes in it — genre and lead
/// instrument family, which the caption names, and mood and tempo feel, which only the image shows; and the Fréchet
/// distance between the classifier embeddings of each setting's music and of all real test clips.
/// </summary>
public static class AttributeEvaluation
{
    public static EvaluationReport Run(IBackend backend, AttributeEvaluationOptions options, Action<EvaluationProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        options.Validate();
        var test = Manifest.Read(options.TestManifest, new ManifestOptions { Images = ImageColumn.Required, BadData = BadDataPolicy.Fail }).Examples;
        if (test.Count < options.Count)
            throw new ArgumentException($"evaluate: {options.TestManifest} has {test.Count} items, fewer than the {options.Count} asked for");
        var labels = test.Select(AttributeLabels.Of).ToArray();

        using var classifier = new AttributeClassifierRunner(backend, options.Classifier, options.Seconds, options.ClassifierBatch);
        // A batch of real clips at a time, so a large test split is never in memory at once.
        var real = new List<ClassifiedClip>(test.Count);
        foreach (var chunk in test.Chunk(options.ClassifierBatch))
        {
            progress?.Invoke(new EvaluationProgress("real clips", real.Count, test.Count));
            real.AddRange(classifier.Classify(chunk.Select(e => classifier.Format.Load(e.AudioPath)).ToArray(), cancellation));
        }
        progress?.Invoke(new EvaluationProgress("real clips", test.Count, test.Count));

        using var model = MelFusionModel.Load(options.ModelDirectory, backend);
        if (model.Config.SampleRate != classifier.Config.SampleRate)
            throw new ArgumentException($"evaluate: the model makes {model.Config.SampleRate} Hz audio, the classifier hears {classifier.Config.SampleRate} Hz");
        using var pipeline = new MusicPipeline(model);
        var settings = Enum.GetValues<GenerationSetting>();
        var generated = settings.ToDictionary(s => s, _ => new List<float[]>());
        for (int i = 0; i < options.Count; i++)
        {
            progress?.Invoke(new EvaluationProgress("generation", i, options.Count));
            var image = ImageFile.Read(test[i].ImagePath!);
            foreach (var setting in settings)
            {
                var request = new GenerationRequest(test[i].Caption, setting == GenerationSetting.TextAndImage ? image : null, options.Seconds,
                    options.Steps, options.GuidanceScale, options.Sampler, options.Seed + (ulong)i, options.Synapse, options.InversionSteps);
                var music = pipeline.Generate(request, cancellation: cancellation);
                generated[setting].Add(classifier.Prepare(music.Audio, music.SampleRate, $"generated item {test[i].Id} ({setting})"));
            }
        }
        progress?.Invoke(new EvaluationProgress("generation", options.Count, options.Count));

        var realEmbeddings = GaussianStatistics.Of(real.Select(c => c.Embedding).ToArray());
        var classified = settings.ToDictionary(s => s, s => classifier.Classify(generated[s], cancellation));
        var heads = AttributeHeads.All.Select((head, h) => new HeadResult(
            head,
            RealAccuracy: Fraction(test.Count, i => real[i].Predictions[h] == labels[i][h]),
            MajorityRate: labels.GroupBy(l => l[h]).Max(group => group.Count()) / (double)labels.Length,
            Agreement: settings.ToDictionary(s => s, s => Fraction(options.Count, i => classified[s][i].Predictions[h] == labels[i][h])))).ToArray();
        var frechet = settings.ToDictionary(s => s,
            s => FrechetDistance.Between(GaussianStatistics.Of(classified[s].Select(c => c.Embedding).ToArray()), realEmbeddings));

        return new EvaluationReport(options, model.Config.Description, model.Config.Trained, test.Count, heads, frechet);
    }

    private static double Fraction(int count, Func<int, bool> hit) => Enumerable.Range(0, count).Count(hit) / (double)count;
}
