using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Models.Classifier;

/// <summary>
/// One output of the attribute classifier: <see cref="Name"/> keys its weights, graph inputs and report rows;
/// <see cref="Classes"/> are the value names in class order. <see cref="ImageOnly"/> attributes are shown in the
/// image and never named in the caption.
/// </summary>
public sealed record AttributeHead(string Name, string Title, IReadOnlyList<string> Classes, bool ImageOnly)
{
    /// <summary>Accuracy of guessing uniformly at random.</summary>
    public double UniformChance => 1.0 / Classes.Count;
}

/// <summary>The classifier's heads, in the order of its logits and of <see cref="AttributeLabels"/>.</summary>
public static class AttributeHeads
{
    public static AttributeHead Genre { get; } = new("genre", "genre", Names<Genre>(AttributeNames.Of), ImageOnly: false);
    public static AttributeHead Mood { get; } = new("mood", "mood", Names<Mood>(AttributeNames.Of), ImageOnly: true);
    public static AttributeHead TempoFeel { get; } = new("tempo_feel", "tempo feel", Names<TempoFeel>(AttributeNames.Of), ImageOnly: true);
    public static AttributeHead InstrumentFamily { get; } =
        new("instrument_family", "instrument family", Names<Data.Synth.InstrumentFamily>(AttributeNames.Of), ImageOnly: false);

    public static IReadOnlyList<AttributeHead> All { get; } = [Genre, Mood, TempoFeel, InstrumentFamily];

    private static string[] Names<T>(Func<T, string> name) where T : struct, Enum => Enum.GetValues<T>().Select(name).ToArray();
}

/// <summary>
/// The class of each head (<see cref="AttributeHeads.All"/> order) for one example: genre, mood, tempo feel and the
/// family of the lead instrument (the melody's, else the chords'; see <see cref="GeneralMidi.Family"/>).
/// </summary>
public sealed record AttributeLabels(int Genre, int Mood, int TempoFeel, int InstrumentFamily)
{
    public int this[int head] => head switch
    {
        0 => Genre,
        1 => Mood,
        2 => TempoFeel,
        3 => InstrumentFamily,
        _ => throw new ArgumentOutOfRangeException(nameof(head), head, $"the classifier has {AttributeHeads.All.Count} heads"),
    };

    /// <summary>
    /// The labels of a manifest example. The tempo feel is read from <c>tempo_feel</c>, or banded from
    /// <c>tempo_bpm</c> when only that is given.
    /// </summary>
    /// <exception cref="InvalidDataException">The example lacks an attribute or names an unknown value; the message names its line.</exception>
    public static AttributeLabels Of(ManifestExample example)
    {
        try
        {
            return Of(example.Attributes ?? throw new ArgumentException("no 'attributes' object: the attribute classifier needs its ground truth"));
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{example.Where}: {e.Message}", e);
        }
    }

    /// <exception cref="ArgumentException">An attribute is missing or unknown.</exception>
    public static AttributeLabels Of(ManifestAttributes a)
    {
        string Required(string? value, string field) => value ?? throw new ArgumentException($"'attributes.{field}' is missing");
        var genre = AttributeNames.ParseGenre(Required(a.Genre, "genre"));
        var mood = AttributeNames.ParseMood(Required(a.Mood, "mood"));
        var tempo = a.TempoFeel is { } feel ? Parse(AttributeHeads.TempoFeel, feel)
            : a.TempoBpm is { } bpm ? (int)AttributeNames.TempoFeelOf(bpm)
            : throw new ArgumentException("'attributes.tempo_feel' and 'attributes.tempo_bpm' are missing");
        var lead = a.Instruments.GetValueOrDefault("melody") ?? a.Instruments.GetValueOrDefault("chords")
            ?? throw new ArgumentException("'attributes.instruments' has neither a melody nor a chords instrument");
        return new AttributeLabels((int)genre, (int)mood, tempo, (int)GeneralMidi.Family(lead.Program));
    }

    private static int Parse(AttributeHead head, string value)
    {
        for (int i = 0; i < head.Classes.Count; i++)
            if (string.Equals(head.Classes[i], value.Trim(), StringComparison.OrdinalIgnoreCase)) return i;
        throw new ArgumentException($"unknown {head.Title} '{value}': choose from {string.Join(", ", head.Classes)}");
    }
}
