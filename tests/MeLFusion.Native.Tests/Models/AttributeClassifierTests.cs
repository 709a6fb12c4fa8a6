using System.Text.Json;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Classifier;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Models;

public sealed class AttributeClassifierTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-classifier-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly AttributeClassifierConfig Small = new() { Channels = [8, 16], Groups = 4, EmbeddingDim = 12 };

    [Fact]
    public void TheStylesLeadInstrumentsCoverEveryFamilyAndEveryProgramHasOne()
    {
        var leads = Enum.GetValues<Genre>().Select(GenreStyle.Of).SelectMany(s => s.MelodyInstruments.Concat(s.ChordInstruments));
        Assert.Equal(Enum.GetValues<InstrumentFamily>(), leads.Select(i => GeneralMidi.Family(i.Program)).Distinct().Order());
        Assert.Equal((InstrumentFamily.Piano, InstrumentFamily.Mallets, InstrumentFamily.Guitar, InstrumentFamily.Strings, InstrumentFamily.BrassAndReeds, InstrumentFamily.Synth),
            (GeneralMidi.Family(0), GeneralMidi.Family(11), GeneralMidi.Family(105), GeneralMidi.Family(110), GeneralMidi.Family(66), GeneralMidi.Family(91)));
        Assert.All(Enumerable.Range(0, 128), p => GeneralMidi.Family(p));
        Assert.Throws<ArgumentOutOfRangeException>(() => GeneralMidi.Family(128));
    }

    /// <summary>Labels read back from the generator's own manifest lines are the attributes it drew.</summary>
    [Fact]
    public void LabelsOfGeneratedItemsAreTheirAttributes()
    {
        for (int index = 0; index < 24; index++)
        {
            var item = DatasetSynthesizer.Prepare(seed: 11, index, new AttributeSpace(), SceneRenderer.MinSize, "test");
            using var line = JsonDocument.Parse(DatasetSynthesizer.ManifestLine(item));
            var attributes = ManifestAttributes.Parse(line.RootElement.GetProperty("attributes"), problem => new InvalidDataException(problem))!;
            var a = item.Attributes;
            Assert.Equal(new AttributeLabels((int)a.Genre, (int)a.Mood, (int)a.TempoFeel, (int)GeneralMidi.Family(a.Lead.Program)), AttributeLabels.Of(attributes));
        }
    }

    private static ManifestExample Example(ManifestAttributes? attributes) => new("x", "caption", "a.wav", null, "test.jsonl", 3, attributes);

    private static readonly ManifestAttributes Complete = new()
    {
        Genre = "hip hop", Mood = "Dreamy", TempoBpm = 150,
        Instruments = new Dictionary<string, ManifestInstrument> { ["chords"] = new(89, "analog synth pad"), ["bass"] = new(38, "synth bass") },
    };

    [Fact]
    public void LabelsTakeTheChordsWhenThereIsNoMelodyAndBandTheBpm()
    {
        Assert.Equal(new AttributeLabels((int)Genre.HipHop, (int)Mood.Dreamy, (int)TempoFeel.Fast, (int)InstrumentFamily.Synth), AttributeLabels.Of(Example(Complete)));
        Assert.Equal((int)TempoFeel.Slow, AttributeLabels.Of(Example(Complete with { TempoFeel = "slow" })).TempoFeel);
    }

    [Theory]
    [InlineData("no attributes", "test.jsonl:3: no 'attributes' object")]
    [InlineData("no mood", "test.jsonl:3: 'attributes.mood' is missing")]
    [InlineData("unknown genre", "test.jsonl:3: unknown genre 'polka'")]
    [InlineData("unknown tempo", "test.jsonl:3: unknown tempo feel 'glacial': choose from slow, medium, fast")]
    [InlineData("no tempo", "'attributes.tempo_feel' and 'attributes.tempo_bpm' are missing")]
    [InlineData("no lead", "neither a melody nor a chords instrument")]
    public void LabelsNameWhatIsMissingOrUnknown(string problem, string message)
    {
        var attributes = problem switch
        {
            "no attributes" => null,
            "no mood" => Complete with { Mood = null },
            "unknown genre" => Complete with { Genre = "polka" },
            "unknown tempo" => Complete with { TempoFeel = "glacial" },
            "no tempo" => Complete with { TempoBpm = null },
            _ => Complete with { Instruments = new Dictionary<string, ManifestInstrument> { ["bass"] = new(38, null) } },
        };
        var e = Assert.Throws<InvalidDataException>(() => AttributeLabels.Of(Example(attributes)));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void BuildsAnEmbeddingAndOneLogitRowPerHead()
    {
        using var backend = new CpuBackend();
        using var weights = WeightSet.Initialize(backend, 3);
        using var classifier = new AttributeClassifier(Small);
        var g = new GraphBuilder();
        var outputs = classifier.Build(g, weights, g.Input("audio", DType.F32, 2, 4000));
        Assert.Equal([2, 12], outputs.Embedding.Shape.Dims.ToArray());
        Assert.Equal(AttributeHeads.All.Select(h => new[] { 2, h.Classes.Count }), outputs.Logits.Select(l => l.Shape.Dims.ToArray()));
        Assert.Equal([8, 6, 3, 8], AttributeHeads.All.Select(h => h.Classes.Count));
        // 64 bands halved twice leave 16: the embedding reads 16 channels × 16 bands.
        Assert.Equal([12, 256], weights.Get("classifier.embedding.weight").Shape.Dims.ToArray());
        Assert.All(weights.RequestedNames, n => Assert.StartsWith("classifier.", n));
    }

    [Fact]
    public void AWeightsFileCarriesItsConfiguration()
    {
        using var backend = new CpuBackend();
        string path = Path.Combine(_dir, AttributeClassifier.FileName);
        AttributeClassifier.Initialize(Small, backend, 5, path);
        var read = AttributeClassifier.ReadConfig(path);
        Assert.Equal((Small.SampleRate, Small.MelBands, Small.HopLength, Small.Groups, Small.EmbeddingDim), (read.SampleRate, read.MelBands, read.HopLength, read.Groups, read.EmbeddingDim));
        Assert.Equal(Small.Channels, read.Channels);

        string other = Path.Combine(_dir, "other.safetensors");
        var writer = new SafetensorsWriter();
        writer.Add("x", [1], [0f]);
        writer.Write(other);
        Assert.Contains("not an attribute classifier", Assert.Throws<InvalidDataException>(() => AttributeClassifier.ReadConfig(other)).Message);
    }

    [Fact]
    public void ABadConfigurationIsNamed()
    {
        var e = Assert.Throws<ArgumentException>(() => new AttributeClassifier(Small with { Channels = [8, 10] }));
        Assert.Contains("stage channels [8, 10] must be positive multiples of the 4 groups", e.Message);
        Assert.Contains("embedding dim", Assert.Throws<ArgumentException>(() => new AttributeClassifier(Small with { EmbeddingDim = 0 })).Message);
    }
}
