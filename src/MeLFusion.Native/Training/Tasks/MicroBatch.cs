using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// One micro-batch of examples as the tasks consume it: captions, clips [B, samples] (16 kHz mono, peak-normalised)
/// and images [B, 3, size, size] in [-1, 1] when the task needs them. <see cref="Keys"/> name each example's content
/// (the key of its cached features). <see cref="Examples"/> are the manifest lines the batch was decoded from, in
/// batch order (with their attributes, the labels of a classifier); null for procedural data.
/// </summary>
public sealed record MicroBatch(IReadOnlyList<string> Captions, float[] Audio, float[]? Images, IReadOnlyList<string> Keys,
    IReadOnlyList<ManifestExample>? Examples = null)
{
    /// <summary>Example <paramref name="index"/> alone, as a batch of one.</summary>
    public MicroBatch Single(int index)
    {
        int samples = Audio.Length / Captions.Count;
        int pixels = Images is null ? 0 : Images.Length / Captions.Count;
        return new MicroBatch([Captions[index]], Audio.AsSpan(index * samples, samples).ToArray(),
            Images?.AsSpan(index * pixels, pixels).ToArray(), [Keys[index]], Examples is null ? null : [Examples[index]]);
    }
}

/// <summary>
/// Where a task's micro-batches come from. Batch <c>index</c> of training is a pure function of the source's seed
/// and the index (the shuffled order of each epoch included), which makes resumed runs exact.
/// </summary>
public interface IBatchSource
{
    int BatchSize { get; }
    /// <summary>Samples per clip.</summary>
    int ClipSamples { get; }
    /// <summary>Image side in pixels (0 when the source has no images).</summary>
    int ImageSize { get; }
    int ValidationBatches { get; }
    MicroBatch Training(long index);
    MicroBatch Validation(int index);
}
