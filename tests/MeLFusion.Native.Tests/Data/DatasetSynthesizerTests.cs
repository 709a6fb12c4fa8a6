using System.Text.Json;
using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.IO.Image;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Data;

public sealed class DatasetSynthesizerTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-synth-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private SynthSettings Settings(string name) => new() { OutputDirectory = Path.Combine(_dir, name), Count = 6, Seed = 2024, ImageSize = 128 };

    public static TheoryData<string, Func<SynthSettings, SynthSettings>> BadSettings => new()
    {
        { "at least 1 (got -3)", s => s with { Count = -3 } },
        { "at least 1 (got 0)", s => s with { Count = 0 } },
        { "train fraction 1.5", s => s with { TrainFraction = 1.5 } },
        { "exceed 1", s => s with { TrainFraction = 0.8, ValidationFraction = 0.3 } },
        { "parallelism", s => s with { MaxParallelism = 0 } },
        { "image size 64", s => s with { ImageSize = 64 } },
        { "tempo range 50-120", s => s with { Space = new AttributeSpace { MinTempo = 50, MaxTempo = 120 } } },
        { "tempo range 150-100", s => s with { Space = new AttributeSpace { MinTempo = 150, MaxTempo = 100 } } },
        { "no genres", s => s with { Space = new AttributeSpace { Genres = [] } } },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void BadSettingsGiveClearErrors(string expected, Func<SynthSettings, SynthSettings> change)
    {
        var e = Assert.Throws<ArgumentException>(() => change(Settings("bad")).Validate());
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UnknownNamesListTheChoices()
    {
        Assert.Equal(Genre.HipHop, AttributeNames.ParseGenre("Hip-Hop"));
        Assert.Equal(Genre.HipHop, AttributeNames.ParseGenre("hip hop"));
        Assert.Equal(Mood.Dreamy, AttributeNames.ParseMood("DREAMY"));
        var e = Assert.Throws<ArgumentException>(() => AttributeNames.ParseGenre("polka"));
        Assert.Contains("unknown genre 'polka'", e.Message);
        Assert.Contains("hip hop", e.Message);
        Assert.Contains("unknown mood 'angry'", Assert.Throws<ArgumentException>(() => AttributeNames.ParseMood("angry")).Message);
    }

    [Fact]
    public void SplitsFollowTheFractions()
    {
        Assert.Equal((80, 10, 10), (Settings("x") with { Count = 100 }).SplitCounts);
        Assert.Equal((5, 1, 0), Settings("x").SplitCounts);
        Assert.Equal((3, 0, 4), (Settings("x") with { Count = 7, TrainFraction = 0.4, ValidationFraction = 0 }).SplitCounts);
    }

    [Fact]
    public void ItemSeedsAreDistinctPerItemAndPurpose()
    {
        var seeds = new HashSet<int>();
        for (int index = 0; index < 500; index++)
            for (int purpose = 1; purpose <= 4; purpose++)
                seeds.Add(DatasetSynthesizer.ItemSeed(7, index, purpose));
        Assert.Equal(2000, seeds.Count);
        Assert.NotEqual(DatasetSynthesizer.ItemSeed(7, 0, 1), DatasetSynthesizer.ItemSeed(8, 0, 1));
    }

    [Fact]
    public void MissingToolsNameTheirPackages()
    {
        var e = Assert.Throws<SynthToolMissingException>(() => FluidSynthRenderer.Locate(executable: "/nonexistent/fluidsynth"));
        Assert.Contains("/nonexistent/fluidsynth", e.Message);
        if (TryLocate(out _)) Assert.Contains("does not exist", Assert.Throws<SynthToolMissingException>(() => FluidSynthRenderer.Locate(soundFont: "/nonexistent.sf2")).Message);
    }

    private bool TryLocate(out FluidSynthRenderer? renderer)
    {
        try
        {
            renderer = FluidSynthRenderer.Locate();
            return true;
        }
        catch (SynthToolMissingException e)
        {
            output.WriteLine($"FluidSynth unavailable here, checking the error a user sees: {e.Message}");
            Assert.Contains("apt-get install", e.Message);
            Assert.True(e.Message.Contains("'fluidsynth'") || e.Message.Contains("'fluid-soundfont-gm'"), e.Message);
            renderer = null;
            return false;
        }
    }

    [Fact]
    public void RefusesANonEmptyDirectoryUnlessOverwriting()
    {
        var settings = Settings("taken");
        Directory.CreateDirectory(settings.OutputDirectory);
        File.WriteAllText(Path.Combine(settings.OutputDirectory, "keep.txt"), "user data");
        var renderer = TryLocate(out var found) ? found! : null;
        if (renderer is null) return;
        var e = Assert.Throws<IOException>(() => new DatasetSynthesizer(settings, renderer).Run());
        Assert.Contains("--overwrite", e.Message);
        Assert.False(Directory.Exists(Path.Combine(settings.OutputDirectory, "audio")));
    }

    [Fact]
    public void SynthesizesAValidReproducibleDataset()
    {
        if (!TryLocate(out var renderer)) return;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var first = Settings("a") with { MaxParallelism = 3 };
        int completed = 0;
        var summary = new DatasetSynthesizer(first, renderer!).Run(() => Interlocked.Increment(ref completed));
        Assert.Equal(6, completed);
        Assert.Equal((5, 1, 0), (summary.Train, summary.Validation, summary.Test));

        var lines = DatasetSynthesizer.SplitNames.SelectMany(split => File.ReadAllLines(Path.Combine(first.OutputDirectory, split + ".jsonl"))).ToList();
        Assert.Equal(6, lines.Count);
        foreach (string line in lines)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            string caption = root.GetProperty("captions").GetString()!;
            Assert.Null(CaptionWriter.FindForbiddenWord(caption));
            var attributes = root.GetProperty("attributes");
            Assert.Contains(attributes.GetProperty("mood").GetString(), Enum.GetValues<Mood>().Select(AttributeNames.Of));
            int bpm = attributes.GetProperty("tempo_bpm").GetInt32();
            Assert.Equal(AttributeNames.Of(AttributeNames.TempoFeelOf(bpm)), attributes.GetProperty("tempo_feel").GetString());

            var audio = WavFile.Read(Path.Combine(first.OutputDirectory, root.GetProperty("location").GetString()!));
            Assert.Equal(16000, audio.SampleRate);
            Assert.Single(audio.Channels);
            Assert.Equal(163840, audio.Frames);
            var samples = audio.Channels[0];
            Assert.Equal(0.5f, samples.Max(Math.Abs));
            double rms = Math.Sqrt(samples.Average(s => (double)s * s));
            Assert.True(rms > 0.02, $"audio nearly silent (rms {rms:0.000})");
            for (int start = 0; start + 16000 <= samples.Length; start += 16000)
                Assert.True(samples.AsSpan(start, 16000).ToArray().Max(Math.Abs) > 0.02, $"silent second at {start / 16000} s in {line}");

            var image = ImageFile.Read(Path.Combine(first.OutputDirectory, root.GetProperty("img_path").GetString()!));
            Assert.Equal((128, 128), (image.Width, image.Height));
            Assert.True(File.Exists(Path.Combine(first.OutputDirectory, root.GetProperty("midi_path").GetString()!)));
            output.WriteLine($"{attributes.GetProperty("genre")}/{attributes.GetProperty("mood")}/{bpm}: {caption}");
        }
        Assert.False(Directory.Exists(Path.Combine(first.OutputDirectory, DatasetSynthesizer.ScratchFolder)));

        // Same seed, other parallelism, overwriting a previous run: identical bytes everywhere.
        var second = Settings("b") with { MaxParallelism = 1 };
        Directory.CreateDirectory(Path.Combine(second.OutputDirectory, DatasetSynthesizer.AudioFolder));
        File.WriteAllText(Path.Combine(second.OutputDirectory, DatasetSynthesizer.AudioFolder, "stale.wav"), "old");
        new DatasetSynthesizer(second with { Overwrite = true }, renderer!).Run();
        Assert.False(File.Exists(Path.Combine(second.OutputDirectory, DatasetSynthesizer.AudioFolder, "stale.wav")));
        var filesA = Files(first.OutputDirectory);
        Assert.Equal(filesA.Keys.Order(), Files(second.OutputDirectory).Keys.Order());
        foreach (var (name, bytes) in Files(second.OutputDirectory))
            Assert.True(bytes.AsSpan().SequenceEqual(filesA[name]), $"{name} differs between two runs with the same seed");
        output.WriteLine($"two runs of 6 items: {clock.Elapsed.TotalSeconds:0.0} s");
    }

    private static Dictionary<string, byte[]> Files(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f), File.ReadAllBytes);
}
