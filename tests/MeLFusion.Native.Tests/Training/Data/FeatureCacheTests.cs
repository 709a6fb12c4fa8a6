using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Training.Data;

public sealed class FeatureCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-cache-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, FeatureTensor> Features(float scale) => new()
    {
        ["latent"] = new FeatureTensor([2, 3, 4], Enumerable.Range(0, 24).Select(i => i * scale - 1).ToArray()),
        ["text_states"] = new FeatureTensor([5, 2], Enumerable.Range(0, 10).Select(i => MathF.Sin(i * scale)).ToArray()),
    };

    private static void AssertSame(IReadOnlyDictionary<string, FeatureTensor> expected, IReadOnlyDictionary<string, FeatureTensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
        {
            Assert.Equal(tensor.Shape, actual[name].Shape);
            Assert.Equal(tensor.Values, actual[name].Values);
        }
    }

    [Fact]
    public void EntriesRoundTripAndAreComputedOnlyOnAMiss()
    {
        var cache = new FeatureCache(_dir, "vae1+t5small");
        Assert.Null(cache.TryLoad("000003"));
        int computed = 0;
        var first = cache.GetOrCompute("000003", () => { computed++; return Features(0.5f); });
        var second = cache.GetOrCompute("000003", () => { computed++; return Features(9f); });
        Assert.Equal(1, computed);
        AssertSame(Features(0.5f), first);
        AssertSame(Features(0.5f), second);
        AssertSame(Features(0.5f), new FeatureCache(_dir, "vae1+t5small").TryLoad("000003")!);
        Assert.Equal(Path.Combine(_dir, "vae1+t5small", "000003.safetensors"), cache.EntryPath("000003"));
        Assert.Empty(cache.Warnings);
        Assert.Empty(Directory.GetFiles(cache.Directory, "*.tmp"));
    }

    [Fact]
    public void VersionsAndIdsAreKeptApartEvenWhenTheyAreNotPlainFileNames()
    {
        var v1 = new FeatureCache(_dir, "v1");
        var v2 = new FeatureCache(_dir, "weights at /models/x.bin");
        v1.Store("a/b", Features(1));
        v1.Store("a_b", Features(2));
        v2.Store("a/b", Features(3));
        AssertSame(Features(1), v1.TryLoad("a/b")!);
        AssertSame(Features(2), v1.TryLoad("a_b")!);
        AssertSame(Features(3), v2.TryLoad("a/b")!);
        Assert.Null(v2.TryLoad("a_b"));
        Assert.Matches(@"^~[0-9a-f]{32}\.safetensors$", Path.GetFileName(v1.EntryPath("a/b")));
        Assert.StartsWith(_dir, v2.Directory);
    }

    public static TheoryData<string, Action<string>, string> Corruptions() => new()
    {
        { "truncated", path => File.WriteAllBytes(path, File.ReadAllBytes(path)[..^7]), "lies outside" },
        { "garbage", path => File.WriteAllText(path, "{}"), "too short" },
        { "flipped value", path => { var b = File.ReadAllBytes(path); b[^3] ^= 0x40; File.WriteAllBytes(path, b); }, "SHA-256" },
        {
            "another example's entry", path => new SafetensorsWriter().AddMetadata("feature_cache_version", "v1")
                .AddMetadata("example_id", "other").Add("latent", [1], [1f]).Write(path), "written for example 'other'"
        },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void CorruptEntriesAreReportedAndRecomputed(string label, Action<string> corrupt, string problem)
    {
        var cache = new FeatureCache(_dir, "v1");
        cache.Store("x", Features(0.25f));
        corrupt(cache.EntryPath("x"));

        int computed = 0;
        var features = cache.GetOrCompute("x", () => { computed++; return Features(0.25f); });
        Assert.True(computed == 1, $"{label}: computed {computed} times");
        AssertSame(Features(0.25f), features);
        string warning = Assert.Single(cache.Warnings);
        Assert.StartsWith($"{cache.EntryPath("x")}: corrupt feature cache entry for example 'x'", warning);
        Assert.Contains(problem, warning);
        Assert.EndsWith("recomputing", warning);

        // The recomputed entry replaced the corrupt one.
        AssertSame(Features(0.25f), cache.TryLoad("x")!);
        Assert.Single(cache.Warnings);
    }

    [Fact]
    public void ThreadsStoringTheSameEntryAtOnceLeaveOneWholeFile()
    {
        // Every store writes its own temporary file and renames it into place, so readers only ever see whole entries.
        var large = new Dictionary<string, FeatureTensor> { ["latent"] = new([256, 1024], new float[256 * 1024]) };
        var cache = new FeatureCache(_dir, "v1");
        Parallel.For(0, 32, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ => cache.Store("same", large));
        AssertSame(large, cache.TryLoad("same")!);
        Assert.Empty(cache.Warnings);
        Assert.Single(Directory.GetFiles(cache.Directory));
    }

    [Fact]
    public void BadTensorsAndEmptyFeatureSetsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new FeatureTensor([2, 3], new float[5]));
        Assert.Throws<ArgumentException>(() => new FeatureTensor([-1, 0], []));
        Assert.Throws<ArgumentException>(() => new FeatureCache(_dir, "v1").Store("x", new Dictionary<string, FeatureTensor>()));
    }
}
