using System.Text.RegularExpressions;

namespace MeLFusion.Native.Data.Synth;

/// <summary>
/// Writes a MusicCaps-style caption from varied templates. It names the genre, the instruments and what each plays,
/// sometimes the key and the meter; it never names the mood or the tempo (those are for the image to tell), and
/// <see cref="ForbiddenWords"/> lists the words that would give them away.
/// </summary>
public static partial class CaptionWriter
{
    /// <summary>Mood and tempo words a caption must not contain (whole words, any case).</summary>
    public static readonly IReadOnlyList<string> ForbiddenWords =
    [
        .. Enum.GetValues<Mood>().Select(AttributeNames.Of),
        .. Enum.GetValues<TempoFeel>().Select(AttributeNames.Of),
        "dark", "joyful", "cheerful", "melancholic", "melancholy", "gloomy", "upbeat", "relaxing", "relaxed", "peaceful",
        "mellow", "chill", "aggressive", "sombre", "somber", "bright", "warm", "uplifting", "moody", "emotional", "intense",
        "soothing", "haunting", "ominous", "eerie", "serene", "mysterious", "romantic", "playful", "soft", "gentle",
        "powerful", "epic", "tempo", "bpm", "quick", "rapid", "brisk", "lively", "leisurely", "moderate", "uptempo",
        "downtempo", "driving", "laid-back", "allegro", "adagio", "andante", "largo", "presto", "moderato", "beats per minute",
    ];

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    public static string Write(MusicAttributes a, Random rng)
    {
        var style = GenreStyle.Of(a.Genre);
        string genre = style.CaptionNames[rng.Next(style.CaptionNames.Length)];
        var parts = PartPhrases(a, rng);
        string list = JoinList(parts);
        string key = rng.NextDouble() < 0.4 ? Pick(rng, [$" in {a.KeyName}", $" in the key of {a.KeyName}", $", set in {a.KeyName}"]) : "";
        string meter = a.BeatsPerBar == 3 && rng.NextDouble() < 0.7 ? Pick(rng, [" in 3/4 time", " in triple meter", " with a waltz lilt"]) : "";
        string percussion = a.Drums is null ? Pick(rng, [" There is no percussion.", " No drums are present.", ""]) : "";
        string text = rng.Next(7) switch
        {
            0 => $"{Capitalize(genre)} instrumental{meter} featuring {list}{key}.{percussion}",
            1 => $"{Capitalize(Article(genre))} {genre} piece with {list}{key}.{percussion}",
            2 => $"The recording features {list}. It is {Article(genre)} {genre} composition{meter}{key}.{percussion}",
            3 => $"An instrumental {genre} tune{key}{meter}: {list}.{percussion}",
            4 => $"{Capitalize(list)}. The style is {genre}{key}.{percussion}",
            5 => $"{Capitalize(genre)} music{meter}{key}, arranged for {list}.{percussion}",
            _ => $"This is {Article(genre)} {genre} track{key}. You can hear {list}.{percussion}",
        };
        return Whitespace().Replace(text, " ").Trim();
    }

    /// <summary>One noun phrase per playing part, in a random order with the melody usually first.</summary>
    private static List<string> PartPhrases(MusicAttributes a, Random rng)
    {
        var phrases = new List<string>();
        bool pianoSolo = a.Melody is { Program: 0 } && a.Chords is { Program: 0 } && a.Bass is { Program: 0 };
        if (pianoSolo)
        {
            phrases.Add(Pick(rng, ["a solo piano", "solo piano playing both melody and accompaniment", "a single piano"]));
            return phrases;
        }
        if (a.Melody is { } melody)
            phrases.Add(Pick(rng, [$"{Article(melody.Name)} {melody.Name} melody", $"{Article(melody.Name)} {melody.Name} carrying the tune", $"{Article(melody.Name)} {melody.Name} playing the melody"]));
        var accompaniment = new List<string>();
        if (a.Chords is { } chords)
            accompaniment.Add(a.Genre switch
            {
                Genre.Jazz => Pick(rng, [$"{chords.Name} comping", $"jazz chords on {Article(chords.Name)} {chords.Name}"]),
                Genre.Rock when chords.Program is 29 or 30 => Pick(rng, [$"{chords.Name} power chords", $"{Article(chords.Name)} {chords.Name} playing power chords"]),
                Genre.Folk => Pick(rng, [$"{Article(chords.Name)} {chords.Name}", $"{chords.Name} chords"]),
                Genre.Latin when chords.Program != 21 => Pick(rng, [$"{Article(chords.Name)} {chords.Name} montuno", $"syncopated {chords.Name} chords"]),
                Genre.Ambient or Genre.Electronic => Pick(rng, [$"{Article(chords.Name)} {chords.Name}", $"{chords.Name} harmonies"]),
                _ => Pick(rng, [$"{chords.Name} chords", $"{Article(chords.Name)} {chords.Name} accompaniment", $"harmony on {Article(chords.Name)} {chords.Name}"]),
            });
        if (a.Bass is { } bass)
            accompaniment.Add(Pick(rng, [$"{Article(bass.Name)} {bass.Name}", $"{Article(bass.Name)} {bass.Name} line", $"{Article(bass.Name)} {bass.Name} part"]));
        if (a.Drums is { } drums)
            accompaniment.Add(a.Genre switch
            {
                Genre.Electronic => Pick(rng, [$"a four-on-the-floor beat from {Article(drums.Name)} {drums.Name}", $"{Article(drums.Name)} {drums.Name}"]),
                Genre.HipHop => Pick(rng, [$"boom-bap drums from {Article(drums.Name)} {drums.Name}", $"{Article(drums.Name)} {drums.Name} beat"]),
                Genre.Rock => Pick(rng, [$"{Article(drums.Name)} {drums.Name} with a backbeat", $"{Article(drums.Name)} {drums.Name}"]),
                Genre.Jazz => Pick(rng, [$"{Article(drums.Name)} {drums.Name} with ride cymbal", $"{Article(drums.Name)} {drums.Name}"]),
                Genre.Latin => Pick(rng, [drums.Name, $"{drums.Name} playing a clave pattern"]),
                Genre.Folk => Pick(rng, [drums.Name, $"a little {drums.Name}"]),
                _ => drums.Name,
            });
        Shuffle(accompaniment, rng);
        if (phrases.Count == 0 || rng.NextDouble() < 0.8) phrases.AddRange(accompaniment);
        else phrases.InsertRange(0, accompaniment);
        return phrases;
    }

    private static readonly Regex Forbidden = new(
        $@"(?<![\w-])(?:{string.Join("|", ForbiddenWords.Select(Regex.Escape))})(?![\w-])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    /// <summary>The first forbidden mood or tempo word (whole word, any case) in a caption, as listed in <see cref="ForbiddenWords"/>; null if none.</summary>
    public static string? FindForbiddenWord(string caption)
    {
        var match = Forbidden.Match(caption);
        return match.Success ? ForbiddenWords.First(w => w.Equals(match.Value, StringComparison.OrdinalIgnoreCase)) : null;
    }

    private static string JoinList(List<string> items) => items.Count switch
    {
        1 => items[0],
        2 => $"{items[0]} and {items[1]}",
        _ => $"{string.Join(", ", items.Take(items.Count - 1))} and {items[^1]}",
    };

    private static string Article(string noun) => "aeiouAEIOU".Contains(noun[0]) || noun.StartsWith("FM", StringComparison.Ordinal) ? "an" : "a";

    private static string Capitalize(string text) => char.ToUpperInvariant(text[0]) + text[1..];

    private static string Pick(Random rng, string[] options) => options[rng.Next(options.Length)];

    private static void Shuffle<T>(List<T> items, Random rng)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
