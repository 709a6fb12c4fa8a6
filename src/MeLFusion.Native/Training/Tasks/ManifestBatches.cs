using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// Micro-batches from MeLBench-style manifests through the prefetching <see cref="DataLoader"/>. Training batch k
/// is whole batch k of the seeded epoch orders (a short tail of each epoch is dropped), so asking for the batches in order streams from the loader's
/// background thread, and asking for any other batch (a resumed run) restarts the loader at that position. Exact
/// resume assumes a dataset without skipped (undecodable) examples; skips are reported as warnings.
/// </summary>
public sealed class ManifestBatches : IBatchSource, IDisposable
{
    private readonly DataLoader _training;
    private readonly MicroBatch[] _validation;
    private IEnumerator<TrainingBatch>? _stream;
    private long _streamNext = -1;

    private ManifestBatches(DataLoader training, MicroBatch[] validation)
    {
        _training = training;
        _validation = validation;
    }

    /// <summary>
    /// Reads the manifests (images required when <paramref name="options"/> asks for them) and decodes the first
    /// <paramref name="validationBatches"/> batches of the validation manifest up front, in manifest order.
    /// </summary>
    public static ManifestBatches Open(string trainManifest, string? validationManifest, int validationBatches, DataLoaderOptions options)
    {
        var read = ManifestOptionsFor(options);
        var validation = validationManifest is not null && validationBatches > 0 ? Manifest.Read(validationManifest, read) : null;
        return Open(Manifest.Read(trainManifest, read), validation, validationBatches, options);
    }

    /// <summary>
    /// Batches from manifests already read (with <see cref="ManifestOptionsFor"/>, so that images are there when the
    /// loader decodes them): for a task that checks the examples first.
    /// </summary>
    public static ManifestBatches Open(Manifest train, Manifest? validation, int validationBatches, DataLoaderOptions options)
    {
        if (train.Examples.Count == 0) throw new InvalidDataException($"{train.Path}: no usable examples");
        if (train.Examples.Count < options.BatchSize)
            throw new InvalidDataException($"{train.Path}: {train.Examples.Count} usable examples, fewer than one batch of {options.BatchSize}");
        // Whole batches only: every micro-batch has the shape the compiled graphs were built for.
        var loader = new DataLoader(train.Examples, options with { DropLast = true });
        var batches = Array.Empty<MicroBatch>();
        if (validation is not null && validationBatches > 0)
        {
            var validationLoader = new DataLoader(validation.Examples, options with { Shuffle = false, DropLast = true });
            batches = validationLoader.Batches(endEpoch: 1).Take(validationBatches).Select(Convert).ToArray();
        }
        return new ManifestBatches(loader, batches);
    }

    /// <summary>How the manifests are read for a loader with <paramref name="options"/>.</summary>
    public static ManifestOptions ManifestOptionsFor(DataLoaderOptions options) => new()
    {
        Images = options.Images is null ? ImageColumn.Ignored : ImageColumn.Required,
        BadData = options.BadData,
    };

    public int BatchSize => _training.Options.BatchSize;
    public int ClipSamples => _training.Options.Audio.Samples;
    public int ImageSize => _training.Options.Images?.Size ?? 0;
    public int ValidationBatches => _validation.Length;
    public IReadOnlyList<string> Warnings => _training.Warnings;

    public MicroBatch Training(long index)
    {
        if (_stream is null || index != _streamNext)
        {
            _stream?.Dispose();
            long perEpoch = _training.ExampleCount / BatchSize;
            var start = _training.Start with { Epoch = checked((int)(index / perEpoch)), Index = (int)(index % perEpoch) * BatchSize };
            _stream = _training.Batches(start).GetEnumerator();
        }
        if (!_stream.MoveNext()) throw new InvalidOperationException("the data loader ended before the run did");
        _streamNext = index + 1;
        return Convert(_stream.Current);
    }

    public MicroBatch Validation(int index) => _validation[index];

    private static MicroBatch Convert(TrainingBatch batch) =>
        new(batch.Captions, batch.Audio, batch.Images, batch.Examples.Select(e => e.ContentKey).ToArray(), batch.Examples);

    public void Dispose() => _stream?.Dispose();
}
