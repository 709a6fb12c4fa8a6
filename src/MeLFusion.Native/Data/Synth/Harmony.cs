namespace MeLFusion.Native.Data.Synth;

/// <summary>A diatonic chord built by stacking thirds on a scale degree of a key.</summary>
/// <param name="Degree">0-based scale degree of the root (0 = tonic).</param>
/// <param name="Root">Pitch class of the root.</param>
/// <param name="Intervals">Semitones above the root, starting with 0, ascending.</param>
/// <param name="Raised">The chord uses the raised leading tone of harmonic minor.</param>
public sealed record Chord(int Degree, int Root, int[] Intervals, bool Raised)
{
    public IEnumerable<int> PitchClasses => Intervals.Select(i => (Root + i) % 12);

    /// <summary>The scale degrees (0..6) of the chord tones, in stacking order: root, third, fifth, seventh.</summary>
    public IEnumerable<int> Degrees => Intervals.Select((_, k) => (Degree + 2 * k) % 7);

    /// <summary>Chord quality suffix ("", "m", "dim", "maj7", "7", "m7", "m7b5", ...).</summary>
    public string Quality => string.Join(",", Intervals) switch
    {
        "0,4,7" => "",
        "0,3,7" => "m",
        "0,3,6" => "dim",
        "0,4,8" => "+",
        "0,4,7,11" => "maj7",
        "0,4,7,10" => "7",
        "0,3,7,10" => "m7",
        "0,3,6,10" => "m7b5",
        "0,3,6,9" => "dim7",
        "0,3,7,11" => "mMaj7",
        "0,4,8,11" => "+maj7",
        var other => $"({other})",
    };

    /// <summary>Chord symbol spelled for the key, e.g. "Dm7", "Gb", "F#7".</summary>
    public string Symbol(int tonic, Mode mode) => AttributeNames.NoteName(Root, tonic, mode) + Quality;

    /// <summary>Roman numeral relative to the major scale on the same tonic ("bVII", "ii7", "V7", "vii°").</summary>
    public string Roman(int tonic)
    {
        string[] numerals = ["I", "II", "III", "IV", "V", "VI", "VII"];
        int expected = Harmony.ScaleSteps(Mode.Major)[Degree];
        int actual = ((Root - tonic) % 12 + 12) % 12;
        string accidental = actual < expected ? "b" : actual > expected ? "#" : "";
        bool minorThird = Intervals[1] == 3;
        string numeral = minorThird ? numerals[Degree].ToLowerInvariant() : numerals[Degree];
        string suffix = Quality switch
        {
            "" or "m" => "",
            "dim" => "°",
            "m7b5" => "ø7",
            "dim7" => "°7",
            "m7" => "7",
            var q => q,
        };
        return accidental + numeral + suffix;
    }
}

/// <summary>Scales, diatonic chords and the chord progressions each genre and mode uses.</summary>
public static class Harmony
{
    private static readonly int[][] Steps =
    [
        [0, 2, 4, 5, 7, 9, 11], // major (ionian)
        [0, 2, 3, 5, 7, 8, 10], // natural minor (aeolian)
        [0, 2, 3, 5, 7, 9, 10], // dorian
        [0, 2, 4, 5, 7, 9, 10], // mixolydian
        [0, 2, 4, 6, 7, 9, 11], // lydian
        [0, 1, 3, 5, 7, 8, 10], // phrygian
    ];

    /// <summary>Semitones of the seven scale degrees above the tonic.</summary>
    public static IReadOnlyList<int> ScaleSteps(Mode mode) => Steps[(int)mode];

    /// <summary>Semitones above the tonic of diatonic step <paramref name="step"/> (any integer; 7 is the octave).</summary>
    public static int Offset(Mode mode, int step)
    {
        int octave = (int)Math.Floor(step / 7.0);
        return Steps[(int)mode][step - 7 * octave] + 12 * octave;
    }

    /// <summary>
    /// Sharps (positive) or flats (negative) in the key signature: that of the mode's parent major scale, since MIDI
    /// and staff notation have no signature of their own for dorian, lydian and the other church modes.
    /// </summary>
    public static int KeySignature(int tonic, Mode mode)
    {
        int parentMajor = ((tonic - ParentOffset(mode)) % 12 + 12) % 12;
        int sharps = parentMajor * 7 % 12; // steps round the circle of fifths from C
        return sharps > 6 ? sharps - 12 : sharps; // flats beyond F#
    }

    /// <summary>Semitones from the parent major scale's tonic up to this mode's tonic.</summary>
    private static int ParentOffset(Mode mode) => mode switch
    {
        Mode.Major => 0,
        Mode.Dorian => 2,
        Mode.Phrygian => 4,
        Mode.Lydian => 5,
        Mode.Mixolydian => 7,
        _ => 9,
    };

    /// <summary>
    /// The triad (or seventh chord) on a scale degree. With <paramref name="raiseLeadingTone"/> in minor, the dominant
    /// takes harmonic minor's raised seventh degree (v becomes V, v7 becomes V7), as classical and jazz minor do.
    /// </summary>
    public static Chord Diatonic(int tonic, Mode mode, int degree, bool seventh, bool raiseLeadingTone = false)
    {
        if (degree is < 0 or > 6) throw new ArgumentOutOfRangeException(nameof(degree), degree, "scale degree must be 0..6");
        bool raise = raiseLeadingTone && mode == Mode.Minor && degree == 4;
        int rootOffset = Offset(mode, degree);
        var intervals = new int[seventh ? 4 : 3];
        for (int k = 0; k < intervals.Length; k++)
        {
            int step = degree + 2 * k;
            int offset = Offset(mode, step) + (raise && step % 7 == 6 ? 1 : 0);
            intervals[k] = offset - rootOffset;
        }
        return new Chord(degree, (tonic + rootOffset) % 12, intervals, raise);
    }

    /// <summary>The 4-chord progressions (scale degrees, one chord per bar) a genre may use in a mode.</summary>
    public static int[][] Progressions(Genre genre, Mode mode) => (genre, mode) switch
    {
        (Genre.Jazz, Mode.Major or Mode.Lydian or Mode.Mixolydian) => [[1, 4, 0, 0], [0, 5, 1, 4], [2, 5, 1, 4], [0, 3, 1, 4]],
        (Genre.Jazz, Mode.Minor) => [[1, 4, 0, 0], [0, 5, 1, 4], [0, 3, 1, 4]],
        (Genre.Classical, Mode.Major or Mode.Lydian or Mode.Mixolydian) => [[0, 3, 4, 0], [0, 5, 1, 4], [0, 1, 4, 0], [0, 3, 1, 4]],
        (Genre.Classical, Mode.Minor) => [[0, 3, 4, 0], [0, 5, 1, 4], [0, 3, 6, 2]],
        (_, Mode.Major) => [[0, 4, 5, 3], [0, 5, 3, 4], [0, 3, 4, 3], [5, 3, 0, 4], [0, 3, 0, 4]],
        (_, Mode.Minor) => [[0, 5, 2, 6], [0, 3, 4, 0], [0, 6, 5, 6], [0, 3, 6, 2], [0, 5, 3, 4]],
        (_, Mode.Dorian) => [[0, 3, 0, 3], [0, 2, 3, 0], [0, 3, 6, 3], [0, 6, 3, 0]],
        (_, Mode.Mixolydian) => [[0, 6, 3, 0], [0, 6, 0, 3], [0, 4, 6, 3]],
        (_, Mode.Lydian) => [[0, 1, 0, 1], [0, 1, 4, 0], [0, 1, 2, 1]],
        _ => [[0, 1, 0, 1], [0, 1, 6, 0], [0, 6, 5, 1]], // phrygian
    };

    /// <summary>Picks a progression for the attributes and builds its chords.</summary>
    public static Chord[] Progression(MusicAttributes a, Random rng)
    {
        var options = Progressions(a.Genre, a.Mode);
        var degrees = options[rng.Next(options.Length)];
        bool sevenths = GenreStyle.Of(a.Genre).Sevenths || (a.Mood == Mood.Dreamy && rng.NextDouble() < 0.5);
        bool raise = a.Genre is Genre.Classical or Genre.Jazz;
        return degrees.Select(d => Diatonic(a.Tonic, a.Mode, d, sevenths, raise)).ToArray();
    }
}
