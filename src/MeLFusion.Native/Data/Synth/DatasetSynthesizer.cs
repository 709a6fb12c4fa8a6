using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.IO.Image;

namespace MeLFusion.Native.Data.Synth;

/// <summary>What to generate and where. <see cref="Validate"/> explains any bad setting.</summary>
public sealed record SynthSettings
{
    public const int MaxImageSize = 2048;

    public required string OutputDirectory { get; init; }
    public int Count { get; init; } = 100;
    public int Seed { get; init; }

    /// <summary>Share of items in train.jsonl; validation takes <see cref="ValidationFraction"/>, test the rest.</summary>
    public double TrainFraction { get; init; } = 0.8;

    public double ValidationFraction { get; init; } = 0.1;
    public AttributeSpace Space { get; init; } = new();

    /// <summary>Replace the dataset in an existing non-empty output directory.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Items (and so FluidSynth processes) in flight at once.</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    public int ImageSize { get; init; } = SceneRenderer.DefaultSize;

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputDirectory)) throw new ArgumentException("no output directory given");
        if (Count < 1) throw new ArgumentException($"item count must be at least 1 (got {Count})");
        if (TrainFraction is < 0 or > 1 || double.IsNaN(TrainFraction)) throw new ArgumentException($"train fraction {TrainFraction} must lie in [0, 1]");
        if (ValidationFraction is < 0 or > 1 || double.IsNaN(ValidationFraction)) throw new ArgumentException($"validation fraction {ValidationFraction} must lie in [0, 1]");
        if (TrainFraction + ValidationFraction > 1 + 1e-9)
            throw new ArgumentException($"train fraction {TrainFraction} plus validation fraction {ValidationFraction} exceed 1");
        if (MaxParallelism < 1) throw new ArgumentException($"parallelism must be at least 1 (got {MaxParallelism})");
        if (ImageSize is < SceneRenderer.MinSize or > MaxImageSize)
            throw new ArgumentException($"image size {ImageSize} must lie in {SceneRenderer.MinSize}..{MaxImageSize} pixels");
        Space.Validate();
    }

    /// <summary>Items per split: train and validation rounded from their fractions, test takes what is left.</summary>
    public (int Train, int Validation, int Test) SplitCounts
    {
        get
        {
            int train = (int)Math.Round(Count * TrainFraction);
            int validation = Math.Min(Count - train, (int)Math.Round(Count * ValidationFraction));
            return (train, validation, Count - train - validation);
        }
    }
}

/// <summary>One item before its audio is rendered: everything but the waveform.</summary>
public sealed record SynthItem(int Index, string Id, string Split, MusicAttributes Attributes, Score Score, string Caption, RgbImage Image);

/// <summary>What a run produced.</summary>
public sealed record SynthSummary(int Train, int Validation, int Test, TimeSpan Elapsed, IReadOnlyList<SynthItem> Items);

/// <summary>
/// Generates a MeLBench-style dataset: for each item, attributes are drawn, a piece composed and written as MIDI,
/// rendered with FluidSynth to a 10.24 s 16 kHz mono WAV, an image drawn as PNG, and a caption written; then
/// <c>train.jsonl</c>, <c>validation.jsonl</c> and <c>test.jsonl</c> list the items with MeLBench's
/// <c>captions</c>/<c>location</c>/<c>img_path</c> fields plus the ground-truth attributes.
/// Each item draws from its own <see cref="Random"/> seeded from (seed, index, purpose), so the output is the same
/// bit for bit whatever the parallelism.
/// </summary>
public sealed class DatasetSynthesizer(SynthSettings settings, FluidSynthRenderer renderer)
{
    public const string AudioFolder = "audio", ImageFolder = "images", MidiFolder = "midi", ScratchFolder = ".work";
    public const string SummaryFile = "dataset.json";
    public static readonly string[] SplitNames = ["train", "validation", "test"];

    /// <summary>Attributes shown only in the image, never in the caption.</summary>
    public static readonly string[] ImageOnlyAttributes = ["mood", "tempo_feel"];

    private enum Purpose { Attributes = 1, Music = 2, Caption = 3, Image = 4 }

    /// <summary>A seed for one purpose of one item, mixed with SplitMix64 so neighbouring items are unrelated.</summary>
    public static int ItemSeed(int seed, int index, int purpose)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)index) * 0x9E3779B97F4A7C15UL + (ulong)purpose * 0xD1B54A32D192ED03UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    private static Random ItemRandom(int seed, int index, Purpose purpose) => new(ItemSeed(seed, index, (int)purpose));

    public static string ItemId(int index) => index.ToString("D6", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Draws, composes, captions and draws the image of one item (no files, no audio).</summary>
    public static SynthItem Prepare(int seed, int index, AttributeSpace space, int imageSize, string split)
    {
        var attributes = space.Sample(ItemRandom(seed, index, Purpose.Attributes));
        var score = Composer.Compose(attributes, ItemRandom(seed, index, Purpose.Music));
        string caption = CaptionWriter.Write(attributes, ItemRandom(seed, index, Purpose.Caption));
        var image = SceneRenderer.Render(attributes, ItemRandom(seed, index, Purpose.Image), imageSize);
        return new SynthItem(index, ItemId(index), split, attributes, score, caption, image);
    }

    public SynthSummary Run(Action? itemCompleted = null, CancellationToken cancel = default)
    {
        settings.Validate();
        var clock = Stopwatch.StartNew();
        string root = Path.GetFullPath(settings.OutputDirectory);
        PrepareDirectory(root);
        var (train, validation, _) = settings.SplitCounts;
        var items = new SynthItem[settings.Count];
        try
        {
            Parallel.For(0, settings.Count, new ParallelOptions { MaxDegreeOfParallelism = settings.MaxParallelism, CancellationToken = cancel }, index =>
            {
                string split = index < train ? SplitNames[0] : index < train + validation ? SplitNames[1] : SplitNames[2];
                var item = Prepare(settings.Seed, index, settings.Space, settings.ImageSize, split);
                string midi = Path.Combine(root, MidiFolder, item.Id + ".mid");
                MidiFile.Write(midi, item.Score);
                var audio = renderer.Render(midi, Path.Combine(root, ScratchFolder, item.Id + ".wav"));
                var clip = FluidSynthRenderer.ToClip(audio, midi);
                WavFile.WritePcm16(Path.Combine(root, AudioFolder, item.Id + ".wav"), FluidSynthRenderer.SampleRate, clip);
                ImageFile.WritePng(Path.Combine(root, ImageFolder, item.Id + ".png"), item.Image);
                items[index] = item;
                itemCompleted?.Invoke();
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
        finally
        {
            string scratch = Path.Combine(root, ScratchFolder);
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
        foreach (string split in SplitNames)
            File.WriteAllLines(Path.Combine(root, split + ".jsonl"), items.Where(i => i.Split == split).Select(ManifestLine));
        File.WriteAllText(Path.Combine(root, SummaryFile), SummaryJson());
        var counts = settings.SplitCounts;
        return new SynthSummary(counts.Train, counts.Validation, counts.Test, clock.Elapsed, items);
    }

    /// <summary>Creates the output folders; refuses a non-empty directory unless overwriting, and then removes only its own outputs.</summary>
    private void PrepareDirectory(string root)
    {
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
        {
            if (!settings.Overwrite)
                throw new IOException($"output directory {root} already exists and is not empty; choose another or allow overwriting (--overwrite)");
            foreach (string folder in new[] { AudioFolder, ImageFolder, MidiFolder, ScratchFolder })
                if (Directory.Exists(Path.Combine(root, folder))) Directory.Delete(Path.Combine(root, folder), recursive: true);
            foreach (string file in SplitNames.Select(s => s + ".jsonl").Append(SummaryFile))
                File.Delete(Path.Combine(root, file));
        }
        foreach (string folder in new[] { AudioFolder, ImageFolder, MidiFolder, ScratchFolder })
            Directory.CreateDirectory(Path.Combine(root, folder));
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Json(Action<Utf8JsonWriter> write, bool indented = false)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, JsonOptions with { Indented = indented }))
            write(writer);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>One manifest line: MeLBench's three fields (paths relative to the manifest) plus the ground truth.</summary>
    public static string ManifestLine(SynthItem item) => Json(w =>
    {
        var a = item.Attributes;
        w.WriteStartObject();
        w.WriteString("captions", item.Caption);
        w.WriteString("location", $"{AudioFolder}/{item.Id}.wav");
        w.WriteString("img_path", $"{ImageFolder}/{item.Id}.png");
        w.WriteString("midi_path", $"{MidiFolder}/{item.Id}.mid");
        w.WriteString("id", item.Id);
        w.WriteStartObject("attributes");
        w.WriteString("genre", AttributeNames.Of(a.Genre));
        w.WriteString("mood", AttributeNames.Of(a.Mood));
        w.WriteNumber("tempo_bpm", a.TempoBpm);
        w.WriteString("tempo_feel", AttributeNames.Of(a.TempoFeel));
        w.WriteString("key", AttributeNames.Tonic(a.Tonic, a.Mode));
        w.WriteString("mode", AttributeNames.Of(a.Mode));
        w.WriteString("time_signature", $"{a.BeatsPerBar}/4");
        w.WriteStartArray("texture");
        foreach (string t in AttributeNames.Of(a.Texture)) w.WriteStringValue(t);
        w.WriteEndArray();
        w.WriteStartObject("instruments");
        foreach (var (role, instrument) in new[] { ("melody", a.Melody), ("chords", a.Chords), ("bass", a.Bass), ("drums", a.Drums) })
        {
            if (instrument is null) continue;
            w.WriteStartObject(role);
            w.WriteNumber(role == "drums" ? "kit" : "program", instrument.Program);
            w.WriteString("name", instrument.Name);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteStartArray("progression");
        foreach (var chord in item.Score.Progression) w.WriteStringValue(chord.Symbol(a.Tonic, a.Mode));
        w.WriteEndArray();
        w.WriteStartArray("roman_numerals");
        foreach (var chord in item.Score.Progression) w.WriteStringValue(chord.Roman(a.Tonic));
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    });

    private string SummaryJson() => Json(w =>
    {
        var (train, validation, test) = settings.SplitCounts;
        w.WriteStartObject();
        w.WriteString("generator", "melfusion dataset synth");
        w.WriteNumber("seed", settings.Seed);
        w.WriteNumber("count", settings.Count);
        w.WriteStartObject("splits");
        w.WriteNumber("train", train);
        w.WriteNumber("validation", validation);
        w.WriteNumber("test", test);
        w.WriteEndObject();
        w.WriteNumber("sample_rate", FluidSynthRenderer.SampleRate);
        w.WriteNumber("clip_samples", FluidSynthRenderer.ClipSamples);
        w.WriteNumber("clip_peak", FluidSynthRenderer.ClipPeak);
        w.WriteNumber("image_size", settings.ImageSize);
        w.WriteStartArray("genres");
        foreach (var g in settings.Space.Genres) w.WriteStringValue(AttributeNames.Of(g));
        w.WriteEndArray();
        w.WriteStartArray("moods");
        foreach (var m in settings.Space.Moods) w.WriteStringValue(AttributeNames.Of(m));
        w.WriteEndArray();
        w.WriteStartArray("tempo_range_bpm");
        w.WriteNumberValue(settings.Space.MinTempo);
        w.WriteNumberValue(settings.Space.MaxTempo);
        w.WriteEndArray();
        w.WriteStartArray("image_only_attributes");
        foreach (string name in ImageOnlyAttributes) w.WriteStringValue(name);
        w.WriteEndArray();
        w.WriteEndObject();
    }, indented: true) + "\n";
}
