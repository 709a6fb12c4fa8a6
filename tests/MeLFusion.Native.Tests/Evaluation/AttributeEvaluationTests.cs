using System.Text.Json;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.Evaluation;
using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Models.Classifier;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Evaluation;

/// <summary>
/// The whole evaluation on a micro model directory: three test items written as the dataset generator lays them out
/// (its manifest lines and images; short tones for audio instead of FluidSynth renders), an untrained classifier, two
/// generated items with two diffusion steps each.
/// </summary>
public sealed class AttributeEvaluationTests : IDisposable
{
    private const double Seconds = 0.5;
    private readonly string _root = Directory.CreateTempSubdirectory("melfusion-evaluate-").FullName;
    private readonly CpuBackend _backend = new();
    private readonly List<SynthItem> _items = [];

    public AttributeEvaluationTests()
    {
        ModelInitializer.Write(MicroModel.Config, MicroModel.Tokenizer, ModelDirectory, _backend, seed: 7);
        AttributeClassifier.Initialize(new AttributeClassifierConfig { Channels = [8, 16], Groups = 4, EmbeddingDim = 16 }, _backend, 3, ClassifierPath);
        foreach (string folder in new[] { DatasetSynthesizer.AudioFolder, DatasetSynthesizer.ImageFolder })
            Directory.CreateDirectory(Path.Combine(_root, folder));
        for (int index = 0; index < 3; index++)
        {
            var item = DatasetSynthesizer.Prepare(seed: 5, index, new AttributeSpace(), SceneRenderer.MinSize, "test");
            ImageFile.WritePng(Path.Combine(_root, DatasetSynthesizer.ImageFolder, item.Id + ".png"), item.Image);
            double pitch = 220 * Math.Pow(2, item.Attributes.Tonic / 12.0);
            var tone = Enumerable.Range(0, (int)(Seconds * 16000)).Select(i => (float)(0.4 * Math.Sin(2 * Math.PI * pitch * i / 16000))).ToArray();
            WavFile.WritePcm16(Path.Combine(_root, DatasetSynthesizer.AudioFolder, item.Id + ".wav"), 16000, tone);
            _items.Add(item);
        }
        File.WriteAllLines(TestManifest, _items.Select(DatasetSynthesizer.ManifestLine));
    }

    public void Dispose()
    {
        _backend.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private string ModelDirectory => Path.Combine(_root, "model");
    private string ClassifierPath => Path.Combine(_root, AttributeClassifier.FileName);
    private string TestManifest => Path.Combine(_root, "test.jsonl");

    private AttributeEvaluationOptions Options => new()
    {
        ModelDirectory = ModelDirectory, Classifier = ClassifierPath, TestManifest = TestManifest,
        Count = 2, Steps = 2, InversionSteps = 2, Seconds = Seconds, Seed = 9, ClassifierBatch = 2,
        Command = "./melfusion evaluate --count 2 --steps 2",
    };

    [Fact]
    public void ProducesAWellFormedReport()
    {
        var stages = new List<EvaluationProgress>();
        var report = AttributeEvaluation.Run(_backend, Options, stages.Add);
        Assert.Equal(["real clips", "generation"], stages.Select(s => s.Stage).Distinct());
        Assert.Contains(new EvaluationProgress("generation", 2, 2), stages);

        // The real-clip figures, recomputed from the classifier's own predictions and the generator's attributes.
        var labels = _items.Select(i => new AttributeLabels((int)i.Attributes.Genre, (int)i.Attributes.Mood, (int)i.Attributes.TempoFeel,
            (int)GeneralMidi.Family(i.Attributes.Lead.Program))).ToArray();
        using (var runner = new AttributeClassifierRunner(_backend, ClassifierPath, Seconds))
        {
            var predictions = runner.Classify(_items.Select(i => runner.Format.Load(Path.Combine(_root, "audio", i.Id + ".wav"))).ToArray());
            for (int h = 0; h < AttributeHeads.All.Count; h++)
            {
                var head = report.Heads[h];
                Assert.Same(AttributeHeads.All[h], head.Head);
                Assert.Equal(Enumerable.Range(0, 3).Count(i => predictions[i].Predictions[h] == labels[i][h]) / 3.0, head.RealAccuracy);
                Assert.Equal(labels.GroupBy(l => l[h]).Max(g => g.Count()) / 3.0, head.MajorityRate);
                Assert.All(head.Agreement.Values, a => Assert.Contains(a, new[] { 0, 0.5, 1 }));
            }
        }
        Assert.Equal(3, report.RealItems);
        // The micro model's synapse alphas are zero, so the image changes nothing: both settings make the same music.
        foreach (var head in report.Heads) Assert.Equal(head.Agreement[GenerationSetting.TextOnly], head.Agreement[GenerationSetting.TextAndImage]);
        Assert.Equal(report.Frechet[GenerationSetting.TextOnly], report.Frechet[GenerationSetting.TextAndImage]);
        Assert.True(double.IsFinite(report.Frechet[GenerationSetting.TextOnly]) && report.Frechet[GenerationSetting.TextOnly] > 0);

        var markdown = report.ToMarkdown().Split('\n');
        Assert.Contains("./melfusion evaluate --count 2 --steps 2", markdown);
        Assert.Contains(markdown, l => l.Contains("(**untrained** weights)") && l.Contains("3 real clips") && l.Contains("first 2 items"));
        var rows = markdown.Where(l => l.StartsWith('|')).ToArray();
        var attributeTable = rows.TakeWhile(l => !l.Contains("Fréchet")).ToArray();
        Assert.Equal(2 + 4 + 2, attributeTable.Length);
        Assert.All(attributeTable, l => Assert.Equal(9, l.Count(c => c == '|')));
        Assert.Equal(["genre", "instrument family", "mood", "tempo feel"], attributeTable[2..6].Select(l => l.Split('|')[1].Trim()));
        Assert.Equal(["caption", "caption", "image only", "image only"], attributeTable[2..6].Select(l => l.Split('|')[2].Trim()));
        Assert.StartsWith("| genre | caption | 8 | 12.5% |", attributeTable[2]);
        Assert.Equal(["**mean, caption attributes**", "**mean, image-only attributes**"], attributeTable[6..].Select(l => l.Split('|')[1].Trim()));
        var frechetRows = rows.SkipWhile(l => !l.Contains("Fréchet")).Skip(2).ToArray();
        Assert.Equal(["text + image", "text only"], frechetRows.Select(l => l.Split('|')[1].Trim()));

        string json = report.Write(Path.Combine(_root, "report.md"));
        Assert.Equal(report.ToMarkdown(), File.ReadAllText(Path.Combine(_root, "report.md")));
        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        Assert.Equal(["genre", "instrument_family", "mood", "tempo_feel"], root.GetProperty("attributes").EnumerateArray().Select(a => a.GetProperty("name").GetString()));
        Assert.Equal(report.Frechet[GenerationSetting.TextOnly], root.GetProperty("frechet_distance").GetProperty("text_only").GetDouble());
        Assert.Equal(report.MeanAgreement(GenerationSetting.TextAndImage, imageOnly: true),
            root.GetProperty("mean_agreement").GetProperty("text_and_image").GetProperty("image_only").GetDouble());
        Assert.Equal(2, root.GetProperty("generated_items").GetInt32());
    }

    [Fact]
    public void RejectsCountsItCannotServe()
    {
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => AttributeEvaluation.Run(_backend, Options with { Count = 1 })).Message);
        Assert.Contains("has 3 items, fewer than the 4 asked for", Assert.Throws<ArgumentException>(() => AttributeEvaluation.Run(_backend, Options with { Count = 4 })).Message);
    }

    [Fact]
    public void ATestItemWithoutAttributesIsNamed()
    {
        var lines = File.ReadAllLines(TestManifest);
        lines[2] = lines[2][..lines[2].IndexOf(",\"attributes\"", StringComparison.Ordinal)] + "}";
        File.WriteAllLines(TestManifest, lines);
        var e = Assert.Throws<InvalidDataException>(() => AttributeEvaluation.Run(_backend, Options));
        Assert.StartsWith($"{TestManifest}:3: no 'attributes' object", e.Message);
    }
}
