using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Training.Data;

public sealed class DataLoaderTests : IDisposable
{
    private readonly TestDataset _data = new(7);

    public void Dispose() => _data.Dispose();

    private static readonly DataLoaderOptions Small = new()
    {
        BatchSize = 3,
        Seed = 42,
        Audio = new AudioClipFormat(16000, 400, 0.5f),
        Images = new ImageInput(4),
    };

    private IReadOnlyList<ManifestExample> Examples(ImageColumn images = ImageColumn.Required) =>
        Manifest.Read(_data.WriteManifest(), new ManifestOptions { Images = images }).Examples;

    /// <summary>A batch reduced to what must repeat exactly: epoch, ids, every float, and the resume state.</summary>
    private static string Fingerprint(TrainingBatch b) =>
        $"{b.Epoch}|{string.Join(",", b.Examples.Select(e => e.Id))}|{string.Join(",", b.Captions)}|" +
        $"{Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Audio.AsSpan())))}|" +
        $"{(b.Images is null ? "-" : Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.Images.AsSpan()))))}|{b.Next}";

    [Fact]
    public void TheShuffleIsAFunctionOfSeedAndEpoch()
    {
        int[] Order(ulong seed, int epoch) => DataLoader.ShuffledOrder(50, seed, epoch);
        Assert.Equal(Order(7, 3), Order(7, 3));
        Assert.Equal(Enumerable.Range(0, 50), Order(7, 3).Order());
        Assert.NotEqual(Order(7, 3), Order(7, 4));
        Assert.NotEqual(Order(7, 3), Order(8, 3));
        // Pinned, so a change to the draw (which would reshuffle every resumed run) shows up here.
        Assert.Equal([4, 2, 1, 0, 3], DataLoader.ShuffledOrder(5, 1, 0));

        var examples = Examples();
        Assert.Equal(new DataLoader(examples, Small).EpochOrder(2), new DataLoader(examples, Small).EpochOrder(2));
        Assert.Equal(Enumerable.Range(0, 7), new DataLoader(examples, Small with { Shuffle = false }).EpochOrder(5));
    }

    [Fact]
    public void BatchesFollowTheEpochOrderAsContiguousArrays()
    {
        var examples = Examples();
        var loader = new DataLoader(examples, Small);
        var batches = loader.Batches(endEpoch: 2).ToList();
        Assert.Equal([3, 3, 1, 3, 3, 1], batches.Select(b => b.Count));
        Assert.Equal([0, 0, 0, 1, 1, 1], batches.Select(b => b.Epoch));
        for (int epoch = 0; epoch < 2; epoch++)
            Assert.Equal(loader.EpochOrder(epoch).Select(i => examples[i].Id),
                batches.Where(b => b.Epoch == epoch).SelectMany(b => b.Examples.Select(e => e.Id)));

        var first = batches[0];
        Assert.Equal(first.Examples.Select(e => e.Caption), first.Captions);
        Assert.Equal((3 * 400, 400, 3 * 3 * 4 * 4, 4), (first.Audio.Length, first.AudioSamples, first.Images!.Length, first.ImageSize));
        for (int b = 0; b < 3; b++)
        {
            var (audio, image) = loader.Decode(first.Examples[b]);
            Assert.Equal(audio, first.Audio[(b * 400)..((b + 1) * 400)]);
            Assert.Equal(image, first.Images[(b * 48)..((b + 1) * 48)]);
        }
        Assert.Equal(new LoaderState(42, 7, 0, 3), first.Next);
        Assert.Equal(new LoaderState(42, 7, 1, 0), batches[2].Next);

        var dropped = new DataLoader(examples, Small with { DropLast = true }).Batches(endEpoch: 2).ToList();
        Assert.Equal([3, 3, 3, 3], dropped.Select(b => b.Count));
    }

    [Fact]
    public void ATextOnlyLoaderReadsNoImages()
    {
        var batch = new DataLoader(Examples(ImageColumn.Ignored), Small with { Images = null }).Batches(endEpoch: 1).First();
        Assert.Null(batch.Images);
        Assert.Equal(0, batch.ImageSize);

        // Asking for images from examples read without them is a reported problem, not a crash; when no example is
        // usable, an endless run stops with an error instead of spinning through empty epochs.
        var loader = new DataLoader(Examples(ImageColumn.Ignored), Small);
        Assert.Empty(loader.Batches(endEpoch: 1));
        Assert.Equal(7, loader.Warnings.Count);
        Assert.Contains("has no image", loader.Warnings[0]);
        var e = Assert.Throws<InvalidDataException>(() => loader.Batches().ToList());
        Assert.Contains("none of the 7 examples could be decoded", e.Message);
    }

    [Fact]
    public void ResumingFromAnySavedStateContinuesExactlyLikeTheUninterruptedRun()
    {
        File.WriteAllText(_data.AudioPath(4), "not audio"); // a skipped example must be skipped the same way after a resume
        var examples = Examples();
        var options = Small with { BatchSize = 4 };
        var uninterrupted = new DataLoader(examples, options).Batches(endEpoch: 3).Select(Fingerprint).ToList();
        Assert.Equal(6, uninterrupted.Count); // 6 usable examples per epoch: a full batch of 4 and a partial one of 2

        for (int stopAfter = 1; stopAfter < uninterrupted.Count; stopAfter++)
        {
            var firstRun = new DataLoader(examples, options).Batches(endEpoch: 3).Take(stopAfter).ToList();
            string saved = firstRun[^1].Next.ToJson();
            // A new loader, as a restarted process would build.
            var resumed = new DataLoader(examples, options).Batches(LoaderState.FromJson(saved), endEpoch: 3).Select(Fingerprint);
            Assert.Equal(uninterrupted, firstRun.Select(Fingerprint).Concat(resumed));
        }
    }

    [Fact]
    public void ParallelDecodingAndPrefetchDepthDoNotChangeTheBatches()
    {
        var examples = Examples();
        var serial = new DataLoader(examples, Small with { DecodeThreads = 1, PrefetchBatches = 1 }).Batches(endEpoch: 2).Select(Fingerprint);
        var parallel = new DataLoader(examples, Small with { DecodeThreads = 3, PrefetchBatches = 4 }).Batches(endEpoch: 2).Select(Fingerprint);
        Assert.Equal(serial, parallel);
    }

    [Fact]
    public void AnUndecodableExampleIsSkippedWithOneWarningOrFailsTheRun()
    {
        File.WriteAllBytes(_data.AudioPath(2), [.. "RIFF"u8, 0, 0, 0, 0, .. "WAVE"u8]);
        var examples = Examples();
        string manifest = examples[0].ManifestPath;

        var loader = new DataLoader(examples, Small);
        var batches = loader.Batches(endEpoch: 2).ToList();
        Assert.Equal(12, batches.Sum(b => b.Count));
        Assert.DoesNotContain(batches.SelectMany(b => b.Examples), e => e.Id == "002");
        Assert.Equal($"{manifest}:3: {_data.AudioPath(2)}: no data chunk", Assert.Single(loader.Warnings));

        var strict = new DataLoader(examples, Small with { BadData = BadDataPolicy.Fail });
        var e = Assert.Throws<TrainingDataException>(() => strict.Batches(endEpoch: 1).ToList());
        Assert.Equal((manifest, 3), (e.Manifest, e.Line));
        Assert.Contains(_data.AudioPath(2), e.Message);
    }

    [Fact]
    public void UnderFailTheBatchesBeforeTheBadExampleArriveThenItsError()
    {
        File.WriteAllText(_data.AudioPath(6), "");
        var loader = new DataLoader(Examples(), Small with { BatchSize = 1, PrefetchBatches = 1, Shuffle = false, BadData = BadDataPolicy.Fail });
        using var batches = loader.Batches(endEpoch: 1).GetEnumerator();
        for (int i = 0; i < 6; i++)
        {
            Assert.True(batches.MoveNext());
            Assert.Equal(i.ToString("D3"), batches.Current.Examples.Single().Id);
        }
        var e = Assert.Throws<TrainingDataException>(() => batches.MoveNext());
        Assert.Equal(7, e.Line);
    }

    [Fact]
    public async Task CancellingOrLeavingEarlyStopsThePrefetchThread()
    {
        var examples = Examples();
        var run = Task.Run(() =>
        {
            using var cancel = new CancellationTokenSource();
            var loader = new DataLoader(examples, Small with { BatchSize = 1, PrefetchBatches = 1 });
            using (var batches = loader.Batches(cancellation: cancel.Token).GetEnumerator())
            {
                Assert.True(batches.MoveNext()); // the producer now blocks on the full queue
                cancel.Cancel();
                Assert.ThrowsAny<OperationCanceledException>(() => batches.MoveNext());
            }
            // Leaving a foreach early disposes the enumerator, which stops and joins the producer.
            foreach (var batch in loader.Batches())
                if (batch.Next.Epoch == 3) break;
        });
        await run.WaitAsync(TimeSpan.FromMinutes(2)); // a TimeoutException here means the loader hung instead of stopping
    }

    [Fact]
    public void LoaderStatesRoundTripAndForeignOrImpossibleOnesAreRefused()
    {
        var state = new LoaderState(ulong.MaxValue, 7, 12, 5);
        Assert.Equal(state, LoaderState.FromJson(state.ToJson()));
        Assert.Contains("\"example_count\":7", state.ToJson());

        Assert.Throws<InvalidDataException>(() => LoaderState.FromJson("{\"seed\": 1}"));
        Assert.Throws<InvalidDataException>(() => LoaderState.FromJson("{\"seed\":1,\"example_count\":7,\"epoch\":0,\"index\":8}"));
        Assert.Throws<InvalidDataException>(() => LoaderState.FromJson("not json"));

        var loader = new DataLoader(Examples(), Small);
        var e = Assert.Throws<ArgumentException>(() => loader.Batches(new LoaderState(43, 7, 0, 0)));
        Assert.Contains("seed 43", e.Message);
        Assert.Throws<ArgumentException>(() => loader.Batches(new LoaderState(42, 8, 0, 0)));
        Assert.Throws<ArgumentException>(() => new DataLoader([], Small));
        Assert.Throws<ArgumentException>(() => new DataLoader(Examples(), Small with { BatchSize = 0 }));
    }
}
