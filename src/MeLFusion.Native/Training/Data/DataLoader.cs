using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Data;

/// <summary>Batching, shuffling, decoding and prefetching settings of a <see cref="DataLoader"/>.</summary>
public sealed record DataLoaderOptions
{
    public int BatchSize { get; init; } = 1;

    /// <summary>Seeds the per-epoch shuffles.</summary>
    public ulong Seed { get; init; }

    /// <summary>False keeps manifest order in every epoch.</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop an epoch's last batch when it has fewer than <see cref="BatchSize"/> examples.</summary>
    public bool DropLast { get; init; }

    /// <summary>Decoded batches the background thread may hold ahead of the consumer (the queue's bound).</summary>
    public int PrefetchBatches { get; init; } = 2;

    /// <summary>Examples of one batch decoded at once.</summary>
    public int DecodeThreads { get; init; } = 1;

    /// <summary>An example whose audio or image cannot be decoded is skipped with a warning, or fails the run.</summary>
    public BadDataPolicy BadData { get; init; } = BadDataPolicy.Skip;

    public AudioClipFormat Audio { get; init; } = AudioClipFormat.MeLFusion;

    /// <summary>Image decoding; null for a model without an image input (no images are read).</summary>
    public ImageInput? Images { get; init; } = ImageInput.MeLFusion;
}

/// <summary>
/// Up to <see cref="DataLoaderOptions.BatchSize"/> examples of one epoch as contiguous row-major arrays:
/// <see cref="Audio"/> is [Count, AudioSamples], <see cref="Images"/> [Count, 3, ImageSize, ImageSize].
/// </summary>
public sealed class TrainingBatch
{
    internal TrainingBatch(int epoch, ManifestExample[] examples, float[] audio, int audioSamples, float[]? images, int imageSize, LoaderState next)
    {
        Epoch = epoch;
        Examples = examples;
        Captions = Array.ConvertAll(examples, e => e.Caption);
        Audio = audio;
        AudioSamples = audioSamples;
        Images = images;
        ImageSize = imageSize;
        Next = next;
    }

    public int Epoch { get; }
    public int Count => Examples.Count;
    public IReadOnlyList<ManifestExample> Examples { get; }
    public IReadOnlyList<string> Captions { get; }
    public float[] Audio { get; }
    public int AudioSamples { get; }
    public float[]? Images { get; }
    public int ImageSize { get; }

    /// <summary>The state to save with a checkpoint taken after this batch: resuming from it yields the batch after this one.</summary>
    public LoaderState Next { get; }
}

/// <summary>
/// Feeds training: a seeded shuffle per epoch (a function of seed and epoch only), batches decoded on a background
/// thread into a bounded queue, cancellation, and a <see cref="LoaderState"/> to resume from. Batches are assembled
/// in order from the epoch's permutation, skipping examples whose files fail to decode (by
/// <see cref="DataLoaderOptions.BadData"/>), so the sequence of batches depends on the data, seed and start state
/// only, never on thread timing. Batches never span epochs.
/// </summary>
public sealed class DataLoader
{
    private readonly ManifestExample[] _examples;
    private readonly BadDataLog _log;

    /// <summary>Examples found undecodable: skipped without decoding again (and warned about once).</summary>
    private readonly ConcurrentDictionary<int, bool> _bad = new();

    public DataLoader(IReadOnlyList<ManifestExample> examples, DataLoaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("the data loader has no examples", nameof(examples));
        if (options.BatchSize < 1 || options.PrefetchBatches < 1 || options.DecodeThreads < 1)
            throw new ArgumentException($"data loader: batch size {options.BatchSize}, prefetch {options.PrefetchBatches} and decode threads {options.DecodeThreads} must be at least 1", nameof(options));
        options.Audio.Validate();
        options.Images?.Validate();
        _examples = [.. examples];
        Options = options;
        _log = new BadDataLog(options.BadData);
    }

    public DataLoaderOptions Options { get; }
    public int ExampleCount => _examples.Length;

    /// <summary>The first example of epoch 0.</summary>
    public LoaderState Start => new(Options.Seed, _examples.Length, 0, 0);

    /// <summary>"&lt;manifest&gt;:&lt;line&gt;: &lt;problem&gt;" for every example skipped so far (thread-safe snapshot).</summary>
    public IReadOnlyList<string> Warnings => _log.Warnings;

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the examples (indices into the example list).</summary>
    public int[] EpochOrder(int epoch) =>
        Options.Shuffle ? ShuffledOrder(_examples.Length, Options.Seed, epoch) : Enumerable.Range(0, _examples.Length).ToArray();

    /// <summary>
    /// A Fisher–Yates permutation of 0..count−1 whose draws come from counter-based Philox4x32-10 (key = seed,
    /// counter = (step, epoch)): the same (seed, epoch) gives the same order on every machine and .NET version.
    /// </summary>
    public static int[] ShuffledOrder(int count, ulong seed, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        var order = Enumerable.Range(0, count).ToArray();
        for (int i = count - 1; i > 0; i--)
        {
            var block = Philox.Generate(new Philox.Block((uint)i, (uint)epoch, 0, 0), (uint)seed, (uint)(seed >> 32));
            ulong random = (ulong)block.X1 << 32 | block.X0;
            int j = (int)(((UInt128)random * (ulong)(i + 1)) >> 64); // uniform in 0..i (bias below 2^-32)
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>
    /// Batches from <paramref name="start"/> (default: <see cref="Start"/>) until epoch <paramref name="endEpoch"/>
    /// begins. Decoding runs ahead on a background thread; disposing the enumerator (leaving a foreach) or cancelling
    /// <paramref name="cancellation"/> stops and joins it. Throws <see cref="OperationCanceledException"/> when cancelled
    /// and <see cref="TrainingDataException"/> for an undecodable example under <see cref="BadDataPolicy.Fail"/>.
    /// </summary>
    public IEnumerable<TrainingBatch> Batches(LoaderState? start = null, int endEpoch = int.MaxValue, CancellationToken cancellation = default)
    {
        start ??= Start;
        if (start.Seed != Options.Seed || start.ExampleCount != _examples.Length)
            throw new ArgumentException($"the loader state is for seed {start.Seed} and {start.ExampleCount} examples; this loader has seed {Options.Seed} and {_examples.Length} examples", nameof(start));
        if (start.Epoch < 0 || start.Index < 0 || start.Index > _examples.Length)
            throw new ArgumentException($"loader state epoch {start.Epoch}, index {start.Index} is outside {_examples.Length} examples", nameof(start));
        return Prefetched(start, endEpoch, cancellation);
    }

    private IEnumerable<TrainingBatch> Prefetched(LoaderState start, int endEpoch, CancellationToken cancellation)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        using var queue = new BlockingCollection<(TrainingBatch? Batch, ExceptionDispatchInfo? Error)>(Options.PrefetchBatches);
        var producer = new Thread(() => Produce(start, endEpoch, queue, stop.Token)) { IsBackground = true, Name = "training data prefetch" };
        producer.Start();
        try
        {
            foreach (var (batch, error) in queue.GetConsumingEnumerable(cancellation))
            {
                error?.Throw();
                yield return batch!;
            }
            cancellation.ThrowIfCancellationRequested();
        }
        finally
        {
            stop.Cancel();
            producer.Join();
        }
    }

    private void Produce(LoaderState start, int endEpoch, BlockingCollection<(TrainingBatch?, ExceptionDispatchInfo?)> queue, CancellationToken stop)
    {
        try
        {
            for (int epoch = start.Epoch, index = start.Index; epoch < endEpoch; epoch++, index = 0)
            {
                // Otherwise a run of many epochs would spin through empty ones.
                if (_bad.Count == _examples.Length)
                    throw new InvalidDataException($"none of the {_examples.Length} examples could be decoded (first: {Warnings.FirstOrDefault()})");
                var order = EpochOrder(epoch);
                while (index < order.Length)
                {
                    var batch = NextBatch(order, epoch, ref index, stop);
                    if (batch is null) break;
                    queue.Add((batch, null), stop);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The consumer left or cancelled: nobody is waiting for more batches.
        }
        catch (Exception e)
        {
            // Under BadDataPolicy.Fail (or an unexpected failure) the consumer rethrows it in its own thread, after the
            // batches before it; waiting for queue space ends early only if the consumer leaves.
            var cause = e is AggregateException { InnerExceptions.Count: 1 } single ? single.InnerExceptions[0] : e;
            try
            {
                queue.Add((null, ExceptionDispatchInfo.Capture(cause)), stop);
            }
            catch (OperationCanceledException)
            {
                // The consumer is gone; nobody is left to tell.
            }
        }
        finally
        {
            queue.CompleteAdding();
        }
    }

    /// <summary>Decodes the next examples of <paramref name="order"/> until a batch is full or the epoch ends; null when no batch is due.</summary>
    private TrainingBatch? NextBatch(int[] order, int epoch, ref int index, CancellationToken stop)
    {
        int batchSize = Options.BatchSize;
        var kept = new List<(int Example, float[] Audio, float[]? Image)>(batchSize);
        while (kept.Count < batchSize && index < order.Length)
        {
            int take = Math.Min(batchSize - kept.Count, order.Length - index);
            var candidates = order[index..(index + take)].Where(i => !_bad.ContainsKey(i)).ToArray();
            index += take;
            var decoded = new (float[] Audio, float[]? Image)?[candidates.Length];
            var failures = new TrainingDataException?[candidates.Length];
            Parallel.For(0, candidates.Length, new ParallelOptions { MaxDegreeOfParallelism = Options.DecodeThreads, CancellationToken = stop }, c =>
            {
                try
                {
                    decoded[c] = Decode(_examples[candidates[c]]);
                }
                catch (TrainingDataException e)
                {
                    failures[c] = e;
                }
            });
            for (int c = 0; c < candidates.Length; c++)
            {
                if (failures[c] is { } failure)
                {
                    // Fail throws here; Skip remembers the example and warns about it the first time only.
                    if (Options.BadData == BadDataPolicy.Fail || _bad.TryAdd(candidates[c], true)) _log.Report(failure);
                }
                else kept.Add((candidates[c], decoded[c]!.Value.Audio, decoded[c]!.Value.Image));
            }
        }
        if (kept.Count == 0 || (kept.Count < batchSize && Options.DropLast)) return null;

        int samples = Options.Audio.Samples;
        var audio = new float[kept.Count * samples];
        var images = Options.Images is { } imageInput ? new float[kept.Count * imageInput.Floats] : null;
        for (int b = 0; b < kept.Count; b++)
        {
            kept[b].Audio.CopyTo(audio, b * samples);
            if (images is not null) kept[b].Image!.CopyTo(images, b * Options.Images!.Floats);
        }
        var next = index < order.Length ? new LoaderState(Options.Seed, order.Length, epoch, index) : new LoaderState(Options.Seed, order.Length, epoch + 1, 0);
        return new TrainingBatch(epoch, kept.Select(k => _examples[k.Example]).ToArray(), audio, samples, images, Options.Images?.Size ?? 0, next);
    }

    /// <summary>
    /// One example's prepared audio (<see cref="DataLoaderOptions.Audio"/>) and image (when
    /// <see cref="DataLoaderOptions.Images"/> is set). Any file problem becomes a <see cref="TrainingDataException"/>
    /// naming the manifest line.
    /// </summary>
    public (float[] Audio, float[]? Image) Decode(ManifestExample example)
    {
        try
        {
            var audio = Options.Audio.Load(example.AudioPath);
            if (Options.Images is not { } images) return (audio, null);
            if (example.ImagePath is null)
                throw new TrainingDataException(example.ManifestPath, example.Line, "the example has no image; read the manifest with ImageColumn.Required");
            return (audio, images.Load(example.ImagePath));
        }
        catch (Exception e) when (e is not TrainingDataException and (IOException or UnauthorizedAccessException or ArgumentException))
        {
            throw new TrainingDataException(example.ManifestPath, example.Line, e.Message, e);
        }
    }
}
