namespace MeLFusion.Native.Data.Synth;

/// <summary>Musical genre: picks instruments, harmony, rhythm patterns and the image scene.</summary>
public enum Genre { Jazz, Rock, Classical, Electronic, Folk, Ambient, HipHop, Latin }

/// <summary>Mood: shapes mode, register, velocity, density and articulation. Shown in the image, never named in the caption.</summary>
public enum Mood { Happy, Sad, Calm, Energetic, Tense, Dreamy }

/// <summary>Tempo band. Shown in the image (motion cues), never named in the caption.</summary>
public enum TempoFeel { Slow, Medium, Fast }

/// <summary>
/// The family of the lead instrument (<see cref="MusicAttributes.Lead"/>), by General MIDI program group
/// (<see cref="GeneralMidi.Family"/>): what an attribute classifier can tell from the timbre of the tune.
/// </summary>
public enum InstrumentFamily { Piano, Mallets, Organ, Guitar, Strings, BrassAndReeds, Flutes, Synth }

/// <summary>Diatonic modes the composer writes in.</summary>
public enum Mode { Major, Minor, Dorian, Mixolydian, Lydian, Phrygian }

/// <summary>Which parts play.</summary>
[Flags]
public enum Texture { None = 0, Melody = 1, Chords = 2, Bass = 4, Percussion = 8 }

/// <summary>A General MIDI program (0-based) or, for percussion, a GM drum kit number, with the name captions use.</summary>
public sealed record Instrument(int Program, string Name);

/// <summary>Everything that defines one item: the composer, the scene renderer and the caption writer all read these.</summary>
/// <param name="Tonic">Pitch class of the key's tonic, 0 = C.</param>
/// <param name="BeatsPerBar">3 or 4 (quarter-note beats).</param>
/// <param name="Melody">Melody instrument, null when <see cref="Texture"/> lacks a melody; likewise for the other parts.</param>
public sealed record MusicAttributes(
    Genre Genre, Mood Mood, int TempoBpm, int Tonic, Mode Mode, int BeatsPerBar, Texture Texture,
    Instrument? Melody, Instrument? Chords, Instrument? Bass, Instrument? Drums)
{
    public const int MinTempo = 60, MaxTempo = 180;

    public TempoFeel TempoFeel => AttributeNames.TempoFeelOf(TempoBpm);

    /// <summary>The instrument carrying the tune: the melody's, or the chords' when there is no melody (never both absent).</summary>
    public Instrument Lead => Melody ?? Chords ?? throw new InvalidOperationException("an item has a melody or chords");

    /// <summary>Key name such as "F# minor" or "D dorian".</summary>
    public string KeyName => $"{AttributeNames.Tonic(Tonic, Mode)} {AttributeNames.Of(Mode)}";
}

/// <summary>Names of attribute values as they appear in manifests, captions and on the command line.</summary>
public static class AttributeNames
{
    private static readonly string[] SharpNames = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
    private static readonly string[] FlatNames = ["C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B"];

    /// <summary>Upper bounds (exclusive) of the slow and medium bands; fast runs to <see cref="MusicAttributes.MaxTempo"/>.</summary>
    public const int SlowBelow = 90, MediumBelow = 130;

    public static TempoFeel TempoFeelOf(int bpm) => bpm < SlowBelow ? TempoFeel.Slow : bpm < MediumBelow ? TempoFeel.Medium : TempoFeel.Fast;

    /// <summary>The BPM range of a tempo band.</summary>
    public static (int Min, int Max) TempoRange(TempoFeel feel) => feel switch
    {
        TempoFeel.Slow => (MusicAttributes.MinTempo, SlowBelow - 1),
        TempoFeel.Medium => (SlowBelow, MediumBelow - 1),
        _ => (MediumBelow, MusicAttributes.MaxTempo),
    };

    /// <summary>A pitch class spelled as the key signature of (tonic, mode) spells it: with flats in flat keys, else sharps.</summary>
    public static string NoteName(int pitchClass, int tonic, Mode mode) =>
        (Harmony.KeySignature(tonic, mode) < 0 ? FlatNames : SharpNames)[((pitchClass % 12) + 12) % 12];

    /// <summary>The key's tonic, spelled for its key signature ("Bb", "F#").</summary>
    public static string Tonic(int tonic, Mode mode) => NoteName(tonic, tonic, mode);

    public static string Of(Genre genre) => genre == Genre.HipHop ? "hip hop" : genre.ToString().ToLowerInvariant();
    public static string Of(Mood mood) => mood.ToString().ToLowerInvariant();
    public static string Of(TempoFeel feel) => feel.ToString().ToLowerInvariant();
    public static string Of(Mode mode) => mode.ToString().ToLowerInvariant();

    public static string Of(InstrumentFamily family) => family == InstrumentFamily.BrassAndReeds ? "brass and reeds" : family.ToString().ToLowerInvariant();

    public static IEnumerable<string> Of(Texture texture) =>
        new[] { Texture.Melody, Texture.Chords, Texture.Bass, Texture.Percussion }.Where(t => texture.HasFlag(t)).Select(t => t.ToString().ToLowerInvariant());

    /// <summary>Parses a genre name; spaces, hyphens, underscores and case are ignored ("hip-hop", "HipHop").</summary>
    public static Genre ParseGenre(string text) => Parse<Genre>(text, "genre");

    public static Mood ParseMood(string text) => Parse<Mood>(text, "mood");

    private static T Parse<T>(string text, string what) where T : struct, Enum
    {
        string key = new(text.Where(char.IsLetter).ToArray());
        foreach (var value in Enum.GetValues<T>())
            if (string.Equals(value.ToString(), key, StringComparison.OrdinalIgnoreCase)) return value;
        throw new ArgumentException($"unknown {what} '{text}': choose from {string.Join(", ", Enum.GetValues<T>().Select(v => Describe(v)))}");
    }

    private static string Describe<T>(T value) where T : struct, Enum => value switch
    {
        Genre g => Of(g),
        Mood m => Of(m),
        _ => value.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// The space items are drawn from: which genres and moods, and the BPM range. <see cref="Sample"/> draws one item's
/// attributes; genre and mood are uniform, the tempo band is weighted by genre and mood (ambient leans slow,
/// energetic leans fast) but every band allowed by the range stays possible.
/// </summary>
public sealed record AttributeSpace
{
    public IReadOnlyList<Genre> Genres { get; init; } = Enum.GetValues<Genre>();
    public IReadOnlyList<Mood> Moods { get; init; } = Enum.GetValues<Mood>();
    public int MinTempo { get; init; } = MusicAttributes.MinTempo;
    public int MaxTempo { get; init; } = MusicAttributes.MaxTempo;

    /// <summary>Throws an <see cref="ArgumentException"/> that says what is wrong.</summary>
    public void Validate()
    {
        if (Genres.Count == 0) throw new ArgumentException("no genres to draw from: name at least one");
        if (Moods.Count == 0) throw new ArgumentException("no moods to draw from: name at least one");
        if (MinTempo < MusicAttributes.MinTempo || MaxTempo > MusicAttributes.MaxTempo || MinTempo > MaxTempo)
            throw new ArgumentException(
                $"tempo range {MinTempo}-{MaxTempo} BPM is invalid: it must lie within {MusicAttributes.MinTempo}-{MusicAttributes.MaxTempo} BPM with min <= max");
    }

    public MusicAttributes Sample(Random rng)
    {
        var genre = Genres[rng.Next(Genres.Count)];
        var mood = Moods[rng.Next(Moods.Count)];
        var style = GenreStyle.Of(genre);
        var moodStyle = MoodStyle.Of(mood);
        int bpm = SampleTempo(rng, style, moodStyle);
        var mode = Pick(rng, moodStyle.ModeWeights);
        int tonic = rng.Next(12);
        int beats = rng.NextDouble() < style.TripleMeterChance ? 3 : 4;

        Instrument? melody = null, chords = null, bass = null, drums = null;
        bool pianoSolo = genre == Genre.Classical && rng.NextDouble() < 0.25;
        if (pianoSolo)
        {
            melody = chords = bass = GenreStyle.Piano;
        }
        else
        {
            chords = rng.NextDouble() < style.ChordsChance ? Pick(rng, style.ChordInstruments) : null;
            melody = rng.NextDouble() < style.MelodyChance || chords is null ? Pick(rng, style.MelodyInstruments) : null;
            bass = rng.NextDouble() < style.BassChance ? PickOther(rng, style.BassInstruments, melody) : null;
            drums = style.DrumKits.Length > 0 && rng.NextDouble() < style.DrumsChance ? Pick(rng, style.DrumKits) : null;
            // At least two parts, so every clip has some accompaniment.
            if ((melody is null ? 0 : 1) + (chords is null ? 0 : 1) + (bass is null ? 0 : 1) + (drums is null ? 0 : 1) < 2)
                bass ??= PickOther(rng, style.BassInstruments, melody);
        }
        var texture = (melody is null ? 0 : Texture.Melody) | (chords is null ? 0 : Texture.Chords)
                    | (bass is null ? 0 : Texture.Bass) | (drums is null ? 0 : Texture.Percussion);
        return new MusicAttributes(genre, mood, bpm, tonic, mode, beats, texture, melody, chords, bass, drums);
    }

    private int SampleTempo(Random rng, GenreStyle genre, MoodStyle mood)
    {
        var bands = Enum.GetValues<TempoFeel>();
        var weights = new double[bands.Length];
        for (int i = 0; i < bands.Length; i++)
        {
            var (lo, hi) = AttributeNames.TempoRange(bands[i]);
            bool reachable = Math.Max(lo, MinTempo) <= Math.Min(hi, MaxTempo);
            weights[i] = reachable ? genre.TempoWeights[i] * mood.TempoWeights[i] : 0;
        }
        var band = bands[PickIndex(rng, weights)];
        var (min, max) = AttributeNames.TempoRange(band);
        return rng.Next(Math.Max(min, MinTempo), Math.Min(max, MaxTempo) + 1);
    }

    private static T Pick<T>(Random rng, T[] items) => items[rng.Next(items.Length)];

    /// <summary>Picks an instrument other than <paramref name="taken"/> when there is one (no cello doubling a cello melody).</summary>
    private static Instrument PickOther(Random rng, Instrument[] options, Instrument? taken)
    {
        var others = options.Where(o => o != taken).ToArray();
        return Pick(rng, others.Length > 0 ? others : options);
    }

    private static T Pick<T>(Random rng, (T Value, double Weight)[] items) => items[PickIndex(rng, items.Select(i => i.Weight).ToArray())].Value;

    private static int PickIndex(Random rng, double[] weights)
    {
        double r = rng.NextDouble() * weights.Sum();
        for (int i = 0; i < weights.Length; i++)
        {
            r -= weights[i];
            if (r < 0 && weights[i] > 0) return i;
        }
        return Array.FindLastIndex(weights, w => w > 0);
    }
}
