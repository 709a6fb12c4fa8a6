using MeLFusion.Native.Data.Synth;

namespace MeLFusion.Native.Tests.Data;

public sealed class HarmonyTests
{
    public static TheoryData<Mode, int[]> ModeSteps => new()
    {
        { Mode.Major, [0, 2, 4, 5, 7, 9, 11] },
        { Mode.Minor, [0, 2, 3, 5, 7, 8, 10] },
        { Mode.Dorian, [0, 2, 3, 5, 7, 9, 10] },
        { Mode.Mixolydian, [0, 2, 4, 5, 7, 9, 10] },
        { Mode.Lydian, [0, 2, 4, 6, 7, 9, 11] },
        { Mode.Phrygian, [0, 1, 3, 5, 7, 8, 10] },
    };

    [Theory]
    [MemberData(nameof(ModeSteps))]
    public void ScalesAreTheChurchModes(Mode mode, int[] steps)
    {
        Assert.Equal(steps, Harmony.ScaleSteps(mode));
        Assert.Equal(12 + steps[2], Harmony.Offset(mode, 9));
        Assert.Equal(steps[5] - 12, Harmony.Offset(mode, -2));
    }

    [Fact]
    public void MajorKeyTriadsAndSeventhsHaveTheTextbookQualities()
    {
        Assert.Equal(["", "m", "m", "", "", "m", "dim"], Enumerable.Range(0, 7).Select(d => Harmony.Diatonic(0, Mode.Major, d, false).Quality));
        Assert.Equal(["maj7", "m7", "m7", "maj7", "7", "m7", "m7b5"], Enumerable.Range(0, 7).Select(d => Harmony.Diatonic(0, Mode.Major, d, true).Quality));
        Assert.Equal(["C", "Dm", "Em", "F", "G", "Am", "Bdim"], Enumerable.Range(0, 7).Select(d => Harmony.Diatonic(0, Mode.Major, d, false).Symbol(0, Mode.Major)));
        Assert.Equal(["Dm7", "G7", "Cmaj7"], new[] { 1, 4, 0 }.Select(d => Harmony.Diatonic(0, Mode.Major, d, true).Symbol(0, Mode.Major)));
    }

    [Fact]
    public void EveryDiatonicChordStaysInItsKey()
    {
        foreach (var mode in Enum.GetValues<Mode>())
            for (int tonic = 0; tonic < 12; tonic++)
            {
                var scale = Harmony.ScaleSteps(mode).Select(s => (tonic + s) % 12).ToHashSet();
                for (int degree = 0; degree < 7; degree++)
                    foreach (bool seventh in new[] { false, true })
                    {
                        var chord = Harmony.Diatonic(tonic, mode, degree, seventh);
                        Assert.Equal((tonic + Harmony.ScaleSteps(mode)[degree]) % 12, chord.Root);
                        Assert.All(chord.PitchClasses, pc => Assert.Contains(pc, scale));
                        Assert.Equal(seventh ? 4 : 3, chord.PitchClasses.Distinct().Count());
                        Assert.Equal(Enumerable.Range(0, chord.Intervals.Length).Select(k => (degree + 2 * k) % 7), chord.Degrees);
                    }
            }
    }

    [Fact]
    public void HarmonicMinorRaisesOnlyTheDominantsThird()
    {
        // A minor: E major / E7 with G#, all other chords natural minor.
        var dominant = Harmony.Diatonic(9, Mode.Minor, 4, true, raiseLeadingTone: true);
        Assert.Equal("7", dominant.Quality);
        Assert.Equal([4, 8, 11, 2], dominant.PitchClasses);
        Assert.True(dominant.Raised);
        Assert.Equal("V7", dominant.Roman(9));
        for (int degree = 0; degree < 7; degree++)
            if (degree != 4)
                Assert.Equal(Harmony.Diatonic(9, Mode.Minor, degree, true), Harmony.Diatonic(9, Mode.Minor, degree, true, raiseLeadingTone: true), ChordComparer.Instance);
        Assert.Equal("m", Harmony.Diatonic(9, Mode.Dorian, 4, false, raiseLeadingTone: true).Quality); // only minor mode raises
    }

    [Fact]
    public void ProgressionsAreFourBarsOfDiatonicDegreesThatReturnHome()
    {
        foreach (var genre in Enum.GetValues<Genre>())
            foreach (var mode in Enum.GetValues<Mode>())
                foreach (var progression in Harmony.Progressions(genre, mode))
                {
                    Assert.Equal(4, progression.Length);
                    Assert.All(progression, d => Assert.InRange(d, 0, 6));
                    // Each loop visits the tonic or ends on the dominant that leads back to it.
                    Assert.True(progression.Contains(0) || progression[^1] == 4, $"{genre} {mode}: [{string.Join(",", progression)}]");
                }
    }

    [Fact]
    public void ProgressionsFollowTheModeAndGenre()
    {
        // Pop major I-V-vi-IV, minor i-VI-III-VII, jazz ii-V-I, mixolydian's bVII, phrygian's bII.
        Assert.Contains(Harmony.Progressions(Genre.Rock, Mode.Major), p => p.SequenceEqual([0, 4, 5, 3]));
        Assert.Contains(Harmony.Progressions(Genre.Folk, Mode.Minor), p => p.SequenceEqual([0, 5, 2, 6]));
        Assert.Contains(Harmony.Progressions(Genre.Jazz, Mode.Major), p => p.SequenceEqual([1, 4, 0, 0]));
        Assert.Contains(Harmony.Progressions(Genre.Jazz, Mode.Minor), p => p.SequenceEqual([1, 4, 0, 0]));
        Assert.All(Harmony.Progressions(Genre.Rock, Mode.Mixolydian), p => Assert.Contains(6, p));
        Assert.All(Harmony.Progressions(Genre.Electronic, Mode.Phrygian), p => Assert.Contains(1, p));

        Assert.Equal(["I", "V", "vi", "IV"], new[] { 0, 4, 5, 3 }.Select(d => Harmony.Diatonic(7, Mode.Major, d, false).Roman(7)));
        Assert.Equal(["i", "bVI", "bIII", "bVII"], new[] { 0, 5, 2, 6 }.Select(d => Harmony.Diatonic(9, Mode.Minor, d, false).Roman(9)));
        Assert.Equal(["ii7", "V7", "Imaj7"], new[] { 1, 4, 0 }.Select(d => Harmony.Diatonic(0, Mode.Major, d, true).Roman(0)));
        Assert.Equal(["I", "bVII", "IV"], new[] { 0, 6, 3 }.Select(d => Harmony.Diatonic(2, Mode.Mixolydian, d, false).Roman(2)));
    }

    [Fact]
    public void PickedProgressionsUseSeventhsWhereTheGenreDoes()
    {
        var space = new AttributeSpace();
        for (int seed = 0; seed < 200; seed++)
        {
            var a = space.Sample(new Random(seed));
            var chords = Harmony.Progression(a, new Random(seed));
            Assert.Contains(chords.Select(c => c.Degree).ToArray(), Harmony.Progressions(a.Genre, a.Mode), new DegreesComparer());
            if (a.Genre is Genre.Jazz or Genre.HipHop or Genre.Ambient) Assert.All(chords, c => Assert.Equal(4, c.Intervals.Length));
            if (a.Genre is Genre.Rock or Genre.Latin or Genre.Folk && a.Mood != Mood.Dreamy) Assert.All(chords, c => Assert.Equal(3, c.Intervals.Length));
        }
    }

    [Fact]
    public void KeySignaturesFollowTheParentMajorScale()
    {
        Assert.Equal(0, Harmony.KeySignature(0, Mode.Major));
        Assert.Equal(1, Harmony.KeySignature(7, Mode.Major));
        Assert.Equal(-1, Harmony.KeySignature(5, Mode.Major));
        Assert.Equal(-2, Harmony.KeySignature(10, Mode.Major));
        Assert.Equal(3, Harmony.KeySignature(6, Mode.Minor));   // F# minor
        Assert.Equal(-4, Harmony.KeySignature(5, Mode.Minor));  // F minor
        Assert.Equal(0, Harmony.KeySignature(2, Mode.Dorian));  // D dorian
        Assert.Equal(0, Harmony.KeySignature(4, Mode.Phrygian));
        Assert.Equal(0, Harmony.KeySignature(5, Mode.Lydian));
        Assert.Equal(0, Harmony.KeySignature(7, Mode.Mixolydian));
        Assert.Equal("Gb lydian", new MusicAttributes(Genre.Ambient, Mood.Calm, 70, 6, Mode.Lydian, 4, Texture.Chords, null, null, null, null).KeyName);
        Assert.Equal("G# minor", new MusicAttributes(Genre.Ambient, Mood.Calm, 70, 8, Mode.Minor, 4, Texture.Chords, null, null, null, null).KeyName);
    }

    private sealed class ChordComparer : IEqualityComparer<Chord>
    {
        public static readonly ChordComparer Instance = new();
        public bool Equals(Chord? x, Chord? y) => x!.Root == y!.Root && x.Intervals.SequenceEqual(y.Intervals) && x.Raised == y.Raised;
        public int GetHashCode(Chord c) => c.Root;
    }

    private sealed class DegreesComparer : IEqualityComparer<int[]>
    {
        public bool Equals(int[]? x, int[]? y) => x!.SequenceEqual(y!);
        public int GetHashCode(int[] d) => d.Length;
    }
}
