using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using MeLFusion.Native.Models.Classifier;

namespace MeLFusion.Native.Evaluation;

/// <summary>
/// One classifier head's results: accuracy on the real test clips, the share of the test split's most common class
/// (what always guessing it would score), and per setting the share of generated items whose predicted class is the
/// requested one.
/// </summary>
public sealed record HeadResult(AttributeHead Head, double RealAccuracy, double MajorityRate, IReadOnlyDictionary<GenerationSetting, double> Agreement);

/// <summary>The figures of an <see cref="AttributeEvaluation"/> run, as a markdown table and as JSON.</summary>
public sealed record EvaluationReport(
    AttributeEvaluationOptions Options,
    string ModelDescription,
    bool ModelTrained,
    int RealItems,
    IReadOnlyList<HeadResult> Heads,
    IReadOnlyDictionary<GenerationSetting, double> Frechet)
{
    /// <summary>Caption attributes first, then the image-only ones (the order of the table).</summary>
    public IEnumerable<HeadResult> OrderedHeads => Heads.Where(h => !h.Head.ImageOnly).Concat(Heads.Where(h => h.Head.ImageOnly));

    /// <summary>The mean agreement over the caption attributes (<paramref name="imageOnly"/> false) or the image-only ones.</summary>
    public double MeanAgreement(GenerationSetting setting, bool imageOnly) =>
        Heads.Where(h => h.Head.ImageOnly == imageOnly).Average(h => h.Agreement[setting]);

    public static string Title(GenerationSetting setting) => setting == GenerationSetting.TextAndImage ? "text + image" : "text only";

    public string ToMarkdown()
    {
        var o = Options;
        var settings = Enum.GetValues<GenerationSetting>();
        var md = new StringBuilder();
        md.AppendLine("### Attribute evaluation").AppendLine();
        if (o.Command is not null) md.AppendLine("```bash").AppendLine(o.Command).AppendLine("```").AppendLine();
        md.Append($"Model: {ModelDescription}{(ModelTrained ? "" : " (**untrained** weights)")}. Classifier: `{Path.GetFileName(o.Classifier)}`. ")
            .Append($"Test split: `{Path.GetFileName(o.TestManifest)}`, {RealItems} real clips; music generated for the first {o.Count} items, ")
            .AppendLine(Invariant($"{o.Seconds:0.##} s, {o.Steps} {o.Sampler} steps, guidance {o.GuidanceScale:0.##}, synapse {o.Synapse}, seeds {o.Seed}–{o.Seed + (ulong)o.Count - 1}."));
        md.AppendLine();
        md.Append("| attribute | given by | classes | chance | majority class | classifier accuracy (real) |");
        foreach (var s in settings) md.Append($" agreement, {Title(s)} |");
        md.AppendLine().Append("|---|---|---:|---:|---:|---:|");
        foreach (var _ in settings) md.Append("---:|");
        md.AppendLine();
        foreach (var h in OrderedHeads)
        {
            md.Append(Invariant($"| {h.Head.Title} | {(h.Head.ImageOnly ? "image only" : "caption")} | {h.Head.Classes.Count} | {Percent(h.Head.UniformChance)} | {Percent(h.MajorityRate)} | {Percent(h.RealAccuracy)} |"));
            foreach (var s in settings) md.Append($" {Percent(h.Agreement[s])} |");
            md.AppendLine();
        }
        foreach (bool imageOnly in new[] { false, true })
        {
            md.Append($"| **mean, {(imageOnly ? "image-only" : "caption")} attributes** | | | | | |");
            foreach (var s in settings) md.Append($" **{Percent(MeanAgreement(s, imageOnly))}** |");
            md.AppendLine();
        }
        md.AppendLine().AppendLine("| setting | Fréchet distance to the real test clips (classifier embeddings) |").AppendLine("|---|---:|");
        foreach (var s in settings) md.AppendLine(Invariant($"| {Title(s)} | {Frechet[s]:F3} |"));
        return md.ToString();
    }

    public string ToJson()
    {
        var o = Options;
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            if (o.Command is not null) w.WriteString("command", o.Command);
            w.WriteString("model", o.ModelDirectory);
            w.WriteString("model_description", ModelDescription);
            w.WriteBoolean("model_trained", ModelTrained);
            w.WriteString("classifier", o.Classifier);
            w.WriteString("test_manifest", o.TestManifest);
            w.WriteNumber("real_items", RealItems);
            w.WriteNumber("generated_items", o.Count);
            w.WriteNumber("seconds", o.Seconds);
            w.WriteNumber("steps", o.Steps);
            w.WriteString("sampler", o.Sampler.ToString());
            w.WriteNumber("guidance_scale", o.GuidanceScale);
            w.WriteString("synapse", o.Synapse.ToString());
            w.WriteNumber("inversion_steps", o.InversionSteps);
            w.WriteNumber("seed", o.Seed);
            w.WriteStartArray("attributes");
            foreach (var h in OrderedHeads)
            {
                w.WriteStartObject();
                w.WriteString("name", h.Head.Name);
                w.WriteBoolean("image_only", h.Head.ImageOnly);
                w.WriteNumber("classes", h.Head.Classes.Count);
                w.WriteNumber("chance", h.Head.UniformChance);
                w.WriteNumber("majority", h.MajorityRate);
                w.WriteNumber("real_accuracy", h.RealAccuracy);
                w.WriteStartObject("agreement");
                foreach (var (setting, value) in h.Agreement) w.WriteNumber(Key(setting), value);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("mean_agreement");
            foreach (var s in Enum.GetValues<GenerationSetting>())
            {
                w.WriteStartObject(Key(s));
                w.WriteNumber("caption", MeanAgreement(s, imageOnly: false));
                w.WriteNumber("image_only", MeanAgreement(s, imageOnly: true));
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteStartObject("frechet_distance");
            foreach (var (setting, value) in Frechet) w.WriteNumber(Key(setting), value);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>Writes the markdown to <paramref name="markdownPath"/> and the JSON beside it (same name, .json); returns the JSON's path.</summary>
    public string Write(string markdownPath)
    {
        string json = Path.ChangeExtension(markdownPath, ".json");
        IO.AtomicFile.Write(markdownPath, f => f.Write(Encoding.UTF8.GetBytes(ToMarkdown())));
        IO.AtomicFile.Write(json, f => f.Write(Encoding.UTF8.GetBytes(ToJson())));
        return json;
    }

    /// <summary>The JSON key of a setting: "text_and_image", "text_only".</summary>
    public static string Key(GenerationSetting setting) => setting == GenerationSetting.TextAndImage ? "text_and_image" : "text_only";

    private static string Percent(double fraction) => (fraction * 100).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
