using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Classifier;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Evaluation;

/// <summary>What the classifier makes of one clip: its embedding and the predicted class of each head (<see cref="AttributeHeads.All"/> order).</summary>
public sealed record ClassifiedClip(float[] Embedding, int[] Predictions);

/// <summary>
/// A trained <see cref="AttributeClassifier"/> (weights file with its configuration) compiled for clips of a fixed
/// length, run over any number of clips in batches of a fixed size (the last one padded with silence).
/// </summary>
public sealed class AttributeClassifierRunner : IDisposable
{
    private const string AudioInput = "audio", EmbeddingOutput = "embedding";

    private readonly WeightSet _weights;
    // Owns the mel filterbank on the backend, which the plan reads: alive as long as the plan.
    private readonly AttributeClassifier _classifier;
    private readonly ExecutionPlan _plan;
    private readonly int _batch;

    /// <summary>Loads the classifier in <paramref name="weightsPath"/> for clips of <paramref name="seconds"/>.</summary>
    public AttributeClassifierRunner(IBackend backend, string weightsPath, double seconds, int batchSize = 8)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "the classifier's batch size must be at least 1");
        Config = AttributeClassifier.ReadConfig(weightsPath);
        Format = new AudioClipFormat(Config.SampleRate, (int)Math.Round(seconds * Config.SampleRate), AudioClipFormat.SpecPeak);
        Format.Validate();
        _batch = batchSize;
        _weights = new WeightSet(backend, weightsPath);
        _classifier = new AttributeClassifier(Config);
        try
        {
            var g = new GraphBuilder();
            var outputs = _classifier.Build(g, _weights, g.Input(AudioInput, DType.F32, batchSize, Format.Samples));
            g.Output(EmbeddingOutput, outputs.Embedding);
            for (int h = 0; h < AttributeHeads.All.Count; h++) g.Output(LogitsOutput(h), outputs.Logits[h]);
            _plan = g.Compile(backend);
        }
        catch
        {
            _classifier.Dispose();
            _weights.Dispose();
            throw;
        }
    }

    public AttributeClassifierConfig Config { get; }

    /// <summary>How clips are prepared for the classifier: its sample rate, the clip length, peak 0.5 (as in training).</summary>
    public AudioClipFormat Format { get; }

    /// <summary>A generated waveform at <paramref name="sampleRate"/> prepared as a test clip is (<see cref="AudioClipFormat.Prepare"/>).</summary>
    public float[] Prepare(float[] audio, int sampleRate, string name) => Format.Prepare(new AudioClip(sampleRate, [audio]), name);

    /// <summary>Classifies prepared clips (<see cref="Format"/>'s length each), in order.</summary>
    public IReadOnlyList<ClassifiedClip> Classify(IReadOnlyList<float[]> clips, CancellationToken cancellation = default)
    {
        int samples = Format.Samples;
        var results = new List<ClassifiedClip>(clips.Count);
        var input = new float[_batch * samples];
        for (int start = 0; start < clips.Count; start += _batch)
        {
            int count = Math.Min(_batch, clips.Count - start);
            Array.Clear(input);
            for (int b = 0; b < count; b++)
            {
                var clip = clips[start + b];
                if (clip.Length != samples) throw new ArgumentException($"attribute classifier: clip {start + b} has {clip.Length} samples, expected {samples}");
                clip.CopyTo(input, b * samples);
            }
            _plan.SetInput<float>(AudioInput, input);
            _plan.Run(cancellation);
            var embeddings = _plan.ReadOutput<float>(EmbeddingOutput);
            var logits = Enumerable.Range(0, AttributeHeads.All.Count).Select(h => _plan.ReadOutput<float>(LogitsOutput(h))).ToArray();
            int width = embeddings.Length / _batch;
            for (int b = 0; b < count; b++)
            {
                var predictions = new int[AttributeHeads.All.Count];
                for (int h = 0; h < predictions.Length; h++)
                {
                    int classes = AttributeHeads.All[h].Classes.Count;
                    predictions[h] = ArgMax(logits[h].AsSpan(b * classes, classes));
                }
                results.Add(new ClassifiedClip(embeddings.AsSpan(b * width, width).ToArray(), predictions));
            }
        }
        return results;
    }

    private static string LogitsOutput(int head) => "logits." + AttributeHeads.All[head].Name;

    /// <summary>The first index of the largest value (ties go to the lower class).</summary>
    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }

    public void Dispose()
    {
        _plan.Dispose();
        _classifier.Dispose();
        _weights.Dispose();
    }
}
