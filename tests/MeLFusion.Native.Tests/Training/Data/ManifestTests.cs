using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Training.Data;

public sealed class ManifestTests : IDisposable
{
    private readonly TestDataset _data = new(4);

    public void Dispose() => _data.Dispose();

    [Fact]
    public void ReadsCaptionsAndResolvesRelativePathsAgainstTheManifestsFolder()
    {
        Directory.CreateDirectory(Path.Combine(_data.Root, "splits"));
        _data.Lines[1] = TestDataset.Line("from a subfolder", "../audio/001.wav", "../images/001.png", "x1");
        _data.Lines[2] = TestDataset.Line("absolute", _data.AudioPath(2), _data.ImagePath(2), "x2");
        string path = Path.Combine(_data.Root, "splits", "train.jsonl");
        // Relative to splits/, so lines 1 and 3 (paths relative to the root) must name missing files.
        File.WriteAllLines(path, _data.Lines);

        var manifest = Manifest.Read(path);
        Assert.Equal(["x1", "x2"], manifest.Examples.Select(e => e.Id));
        var first = manifest.Examples[0];
        Assert.Equal(("from a subfolder", _data.AudioPath(1), _data.ImagePath(1), path, 2),
            (first.Caption, first.AudioPath, first.ImagePath, first.ManifestPath, first.Line));
        Assert.Equal(_data.AudioPath(2), manifest.Examples[1].AudioPath);
        Assert.Equal(2, manifest.Warnings.Count);
        Assert.StartsWith($"{path}:1: audio file '{Path.Combine(_data.Root, "splits", "audio", "000.wav")}' does not exist", manifest.Warnings[0]);
        Assert.StartsWith($"{path}:4: ", manifest.Warnings[1]);
    }

    [Fact]
    public void IdsComeFromTheLineOrAStableHashAndExtraFieldsBlankLinesCrlfAndBomAreAccepted()
    {
        _data.Lines[0] = """{"captions": "numbered", "location": "audio/000.wav", "img_path": "images/000.png", "id": 17, "attributes": {"genre": "jazz"}}""";
        _data.Lines[1] = TestDataset.Line("no id", "audio/001.wav", "images/001.png");
        _data.Lines[2] = TestDataset.Line("no id either", "audio/002.wav", "images/002.png") + "\r\n   ";
        string path = Path.Combine(_data.Root, "train.jsonl");
        File.WriteAllText(path, "\uFEFF" + string.Join("\n", _data.Lines), new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));

        var manifest = Manifest.Read(path);
        Assert.Empty(manifest.Warnings);
        Assert.Equal([1, 2, 3, 5], manifest.Examples.Select(e => e.Line));
        Assert.Equal("17", manifest.Examples[0].Id);
        string derived = manifest.Examples[1].Id;
        Assert.Matches("^[0-9a-f]{16}$", derived);
        Assert.NotEqual(derived, manifest.Examples[2].Id);

        // The derived id depends on the line's fields as written, not on where the dataset lies.
        string copy = Path.Combine(Directory.CreateTempSubdirectory("melfusion-copy-").FullName, "train.jsonl");
        try
        {
            Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(copy)!, "audio"));
            Directory.CreateDirectory(Path.Combine(Path.GetDirectoryName(copy)!, "images"));
            File.Copy(_data.AudioPath(1), Path.Combine(Path.GetDirectoryName(copy)!, "audio", "001.wav"));
            File.Copy(_data.ImagePath(1), Path.Combine(Path.GetDirectoryName(copy)!, "images", "001.png"));
            File.WriteAllText(copy, _data.Lines[1]);
            Assert.Equal(derived, Manifest.Read(copy).Examples.Single().Id);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(copy)!, recursive: true);
        }
    }

    /// <summary>One bad line per problem (line 1 stays good); the expected text of each report.</summary>
    public static TheoryData<string, string> BadLines() => new()
    {
        { "{\"captions\": \"cut off", "not valid JSON" },
        { "[1, 2, 3]", "expected a JSON object, found Array" },
        { TestDataset.Line(null, "audio/001.wav", "images/001.png"), "'captions' is missing" },
        { """{"captions": 5, "location": "audio/001.wav", "img_path": "images/001.png"}""", "'captions' must be a string, found Number" },
        { TestDataset.Line("no audio", null, "images/001.png"), "'location' is missing" },
        { TestDataset.Line("empty path", "", "images/001.png"), "'location' is not a usable path" },
        { TestDataset.Line("missing audio", "audio/999.wav", "images/001.png"), "audio file '" },
        { TestDataset.Line("no image", "audio/001.wav", null), "'img_path' is missing" },
        { TestDataset.Line("missing image", "audio/001.wav", "images/999.png"), "image file '" },
        { TestDataset.Line("same id", "audio/001.wav", "images/001.png", "000"), "id '000' is already used on line 1" },
        { """{"captions": "x", "location": "audio/001.wav", "img_path": "images/001.png", "id": [1]}""", "'id' must be a non-empty string or an integer" },
        { """{"captions": "x", "location": "audio/001.wav", "img_path": "images/001.png", "attributes": 5}""", "'attributes' must be an object, found Number" },
        { """{"captions": "x", "location": "audio/001.wav", "img_path": "images/001.png", "attributes": {"tempo_bpm": "fast"}}""",
            "'attributes.tempo_bpm' must be a number, found String" },
        { """{"captions": "x", "location": "audio/001.wav", "img_path": "images/001.png", "attributes": {"tempo_bpm": 95.5}}""",
            "'attributes.tempo_bpm' must be an integer, found 95.5" },
        { """{"captions": "x", "location": "audio/001.wav", "img_path": "images/001.png", "attributes": {"texture": ["melody", 3]}}""",
            "'attributes.texture' must hold strings, found Number" },
        { """{"captions": "x", "location": "audio/001.wav", "img_path": "images/001.png", "attributes": {"instruments": {"bass": {"name": "tuba"}}}}""",
            "'attributes.instruments.bass' has neither 'program' nor 'kit'" },
    };

    [Theory]
    [MemberData(nameof(BadLines))]
    public void BadLinesAreSkippedWithAWarningOrFailTheRead(string line, string problem)
    {
        _data.Lines[1] = line;
        string path = _data.WriteManifest();

        var manifest = Manifest.Read(path, new ManifestOptions { BadData = BadDataPolicy.Skip });
        Assert.Equal(["000", "002", "003"], manifest.Examples.Select(e => e.Id));
        string warning = Assert.Single(manifest.Warnings);
        Assert.StartsWith($"{path}:2: ", warning);
        Assert.Contains(problem, warning);

        var e = Assert.Throws<TrainingDataException>(() => Manifest.Read(path, new ManifestOptions { BadData = BadDataPolicy.Fail }));
        Assert.Equal((path, 2), (e.Manifest, e.Line));
        Assert.Equal(warning, e.Message);
    }

    /// <summary>A line as the dataset generator writes it carries its ground truth; a line without attributes has none.</summary>
    [Fact]
    public void AttributesOfAGeneratorLineAreReadAndTheyAreOptional()
    {
        var item = DatasetSynthesizer.Prepare(seed: 4, index: 0, new AttributeSpace(), SceneRenderer.MinSize, "test");
        Directory.CreateDirectory(Path.Combine(_data.Root, DatasetSynthesizer.AudioFolder));
        File.Copy(_data.AudioPath(0), Path.Combine(_data.Root, DatasetSynthesizer.AudioFolder, item.Id + ".wav"));
        File.Copy(_data.ImagePath(0), Path.Combine(_data.Root, DatasetSynthesizer.ImageFolder, item.Id + ".png"));
        _data.Lines[0] = DatasetSynthesizer.ManifestLine(item);

        var examples = Manifest.Read(_data.WriteManifest(), new ManifestOptions { BadData = BadDataPolicy.Fail }).Examples;
        var a = item.Attributes;
        var read = examples[0].Attributes!;
        Assert.Equal((AttributeNames.Of(a.Genre), AttributeNames.Of(a.Mood), a.TempoBpm, AttributeNames.Of(a.TempoFeel), AttributeNames.Of(a.Mode), $"{a.BeatsPerBar}/4"),
            (read.Genre, read.Mood, read.TempoBpm, read.TempoFeel, read.Mode, read.TimeSignature));
        Assert.Equal(AttributeNames.Tonic(a.Tonic, a.Mode), read.Key);
        Assert.Equal(AttributeNames.Of(a.Texture), read.Texture);
        var parts = new[] { ("melody", a.Melody), ("chords", a.Chords), ("bass", a.Bass), ("drums", a.Drums) }.Where(p => p.Item2 is not null).ToArray();
        Assert.Equal(parts.Select(p => p.Item1).Order(), read.Instruments.Keys.Order());
        foreach (var (role, instrument) in parts) Assert.Equal(new ManifestInstrument(instrument!.Program, instrument.Name), read.Instruments[role]);
        Assert.All(examples.Skip(1), e => Assert.Null(e.Attributes));
        // Examples of two reads of the same line are equal, attributes included.
        Assert.Equal(examples[0], Manifest.Read(_data.WriteManifest()).Examples[0]);
    }

    [Fact]
    public void InvalidUtf8IsABadLine()
    {
        string path = _data.WriteManifest();
        var bytes = File.ReadAllBytes(path).ToList();
        bytes.InsertRange(0, [(byte)'{', 0xC3, 0x28, (byte)'}', (byte)'\n']);
        File.WriteAllBytes(path, [.. bytes]);
        var manifest = Manifest.Read(path);
        Assert.Equal($"{path}:1: the line is not valid UTF-8", Assert.Single(manifest.Warnings));
        Assert.Equal(4, manifest.Examples.Count);
    }

    [Fact]
    public void AnIgnoredImageColumnNeedsNoImages()
    {
        _data.Lines[1] = TestDataset.Line("text only", "audio/001.wav", null, "t");
        _data.Lines[2] = TestDataset.Line("broken image path", "audio/002.wav", "images/none.png", "u");
        var manifest = Manifest.Read(_data.WriteManifest(), new ManifestOptions { Images = ImageColumn.Ignored, BadData = BadDataPolicy.Fail });
        Assert.Equal(4, manifest.Examples.Count);
        Assert.All(manifest.Examples, e => Assert.Null(e.ImagePath));
    }

    [Fact]
    public void AnUnreadableManifestIsAnErrorNamingItUnderEitherPolicy()
    {
        string path = Path.Combine(_data.Root, "missing.jsonl");
        var e = Assert.Throws<TrainingDataException>(() => Manifest.Read(path, new ManifestOptions { BadData = BadDataPolicy.Skip }));
        Assert.StartsWith($"{path}: cannot read the manifest", e.Message);
        Assert.Equal(0, e.Line);
    }
}
