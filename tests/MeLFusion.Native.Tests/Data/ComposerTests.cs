using MeLFusion.Native.Data.Synth;

namespace MeLFusion.Native.Tests.Data;

public sealed class ComposerTests
{
    private const int Items = 240;

    private static IEnumerable<(MusicAttributes Attributes, Score Score)> Pieces(int count = Items, AttributeSpace? space = null)
    {
        space ??= new AttributeSpace();
        for (int i = 0; i < count; i++)
        {
            var a = space.Sample(new Random(i));
            yield return (a, Composer.Compose(a, new Random(1000 + i)));
        }
    }

    private static MusicAttributes Fixed(Genre genre, Mood mood, int bpm, Texture texture = Texture.Melody | Texture.Chords | Texture.Bass | Texture.Percussion)
    {
        var style = GenreStyle.Of(genre);
        return new MusicAttributes(genre, mood, bpm, 2, Mode.Dorian, 4, texture,
            texture.HasFlag(Texture.Melody) ? style.MelodyInstruments[0] : null,
            texture.HasFlag(Texture.Chords) ? style.ChordInstruments[0] : null,
            texture.HasFlag(Texture.Bass) ? style.BassInstruments[0] : null,
            texture.HasFlag(Texture.Percussion) && style.DrumKits.Length > 0 ? style.DrumKits[0] : null);
    }

    [Fact]
    public void NotesStayInRangeAndDrumsUseChannelTen()
    {
        foreach (var (a, score) in Pieces())
        {
            var roles = score.Parts.Select(p => p.Role).Aggregate(Texture.None, (t, r) => t | r);
            Assert.Equal(a.Texture, roles);
            foreach (var part in score.Parts)
            {
                Assert.NotEmpty(part.Notes);
                Assert.Equal(part.Role == Texture.Percussion, part.Channel == GeneralMidi.DrumChannel);
                Assert.All(part.Notes, n =>
                {
                    Assert.InRange(n.Velocity, 1, 127);
                    Assert.True(n.Duration > 0 && n.Start >= 0);
                });
                var pitches = part.Notes.Select(n => n.Pitch).ToList();
                switch (part.Role)
                {
                    case Texture.Melody:
                        var (low, high) = GeneralMidi.Range(part.Program);
                        Assert.All(pitches, p => Assert.InRange(p, low, high + 1)); // +1: the tense mood's chromatic rub
                        break;
                    case Texture.Bass:
                        Assert.All(pitches, p => Assert.InRange(p, 28, 60));
                        break;
                    case Texture.Chords:
                        Assert.All(pitches, p => Assert.InRange(p, 36, 96));
                        break;
                    default:
                        Assert.All(pitches, p => Assert.InRange(p, 35, 81)); // the General MIDI percussion map
                        break;
                }
            }
            Assert.True(score.Seconds(score.LengthTicks) >= Composer.MinimumSeconds, $"{score.Bars} bars at {a.TempoBpm} BPM are too short");
            Assert.Equal(0, score.Bars % 4);
        }
    }

    [Fact]
    public void MidiTempoAndMeterMatchTheAttributes()
    {
        foreach (var (a, score) in Pieces(60))
        {
            var smf = SmfReader.Parse(MidiFile.Encode(score));
            Assert.Equal((int)Math.Round(60_000_000.0 / a.TempoBpm), smf.TempoMicroseconds);
            Assert.Equal(a.TempoBpm, 60_000_000.0 / smf.TempoMicroseconds, 0.01);
            Assert.Equal(a.BeatsPerBar, smf.Tracks[0].Meta.Single(m => m.Type == 0x58).Data[0]);
            Assert.Equal(score.Parts.Sum(p => p.Notes.Count), smf.Notes().Count + Duplicates(score));
            Assert.All(smf.Notes(), n => Assert.Equal(score.Parts[n.Track - 1].Channel, n.Channel));
        }
    }

    /// <summary>Notes of one key struck twice at the same tick, which the writer sounds once.</summary>
    private static int Duplicates(Score score) =>
        score.Parts.Sum(p => p.Notes.GroupBy(n => (n.Start, n.Pitch)).Sum(g => g.Count() - 1));

    [Fact]
    public void SameSeedGivesTheSamePieceAndOtherSeedsDiffer()
    {
        var a = new AttributeSpace().Sample(new Random(5));
        byte[] first = MidiFile.Encode(Composer.Compose(a, new Random(42)));
        Assert.Equal(first, MidiFile.Encode(Composer.Compose(a, new Random(42))));
        Assert.NotEqual(first, MidiFile.Encode(Composer.Compose(a, new Random(43))));
    }

    [Fact]
    public void MelodyDownbeatsAreChordTones()
    {
        foreach (var (a, score) in Pieces())
        {
            var melody = score.Parts.FirstOrDefault(p => p.Role == Texture.Melody);
            if (melody is null) continue;
            foreach (var note in melody.Notes)
            {
                int bar = (int)Math.Round(note.Start / (double)score.TicksPerBar);
                if (Math.Abs(note.Start - bar * score.TicksPerBar) > 8 || bar >= score.Bars) continue; // within the humanising jitter of a downbeat
                var chord = score.Progression[bar % score.Progression.Length];
                Assert.Contains(note.Pitch % 12, chord.PitchClasses);
            }
        }
    }

    [Fact]
    public void GenresHaveTheirRhythms()
    {
        static List<Note> Drum(Score s, int pitch) => s.Parts.Single(p => p.Role == Texture.Percussion).Notes.Where(n => n.Pitch == pitch).ToList();

        // Electronic: four on the floor, exactly on the beat.
        var house = Composer.Compose(Fixed(Genre.Electronic, Mood.Happy, 124), new Random(1));
        var kicks = Drum(house, GeneralMidi.Kick);
        Assert.Equal(house.Bars * 4, kicks.Count);
        Assert.All(kicks, n => Assert.Equal(0, n.Start % 480));

        // Rock: snare backbeat on 2 and 4.
        var rock = Composer.Compose(Fixed(Genre.Rock, Mood.Energetic, 140), new Random(2));
        var backbeats = Drum(rock, GeneralMidi.Snare).Where(n => n.Start % 1920 is >= 477 and <= 483 or >= 1437 and <= 1443).Count();
        Assert.Equal(rock.Bars * 2, backbeats);

        // Jazz: swung ride, the "skip" note two thirds through the beat (tick 320), not halfway (240).
        var jazz = Composer.Compose(Fixed(Genre.Jazz, Mood.Happy, 150), new Random(3));
        var offbeats = Drum(jazz, GeneralMidi.Ride).Select(n => n.Start % 480).Where(p => p is > 100 and < 400).ToList();
        Assert.NotEmpty(offbeats);
        Assert.All(offbeats, p => Assert.InRange(p, 317, 323));

        // Latin: son clave 3-2 over two bars.
        var latin = Composer.Compose(Fixed(Genre.Latin, Mood.Calm, 100), new Random(4));
        var clave = Drum(latin, GeneralMidi.Claves).Take(5).Select(n => (int)Math.Round(n.Start / 120.0)).ToArray();
        Assert.Equal([0, 6, 12, 20, 24], clave);

        // Hip hop: snare on 2 and 4, hats swung on 16ths.
        var hipHop = Composer.Compose(Fixed(Genre.HipHop, Mood.Calm, 88), new Random(5));
        Assert.Equal(hipHop.Bars * 2, Drum(hipHop, GeneralMidi.Snare).Count);

        // Classical never has drums; ambient drums, when present, stay sparse.
        Assert.DoesNotContain(Composer.Compose(Fixed(Genre.Classical, Mood.Calm, 80), new Random(6)).Parts, p => p.Role == Texture.Percussion);
    }

    [Fact]
    public void MoodShapesVelocityRegisterDensityAndArticulation()
    {
        (double Velocity, double Pitch, double Notes, double Legato) Measure(Mood mood)
        {
            var melodies = Enumerable.Range(0, 12)
                .Select(i => Composer.Compose(Fixed(Genre.Folk, mood, 100), new Random(i)).Parts.Single(p => p.Role == Texture.Melody).Notes)
                .ToList();
            double legato = melodies.Average(m => m.Zip(m.Skip(1), (x, y) => x.Duration / (double)Math.Max(1, y.Start - x.Start)).Average());
            return (melodies.Average(m => m.Average(n => n.Velocity)), melodies.Average(m => m.Average(n => n.Pitch)), melodies.Average(m => m.Count), legato);
        }

        var energetic = Measure(Mood.Energetic);
        var sad = Measure(Mood.Sad);
        var dreamy = Measure(Mood.Dreamy);
        var tense = Measure(Mood.Tense);
        Assert.True(energetic.Velocity > sad.Velocity + 30, $"velocity energetic {energetic.Velocity:0} vs sad {sad.Velocity:0}");
        Assert.True(dreamy.Pitch > tense.Pitch + 8, $"register dreamy {dreamy.Pitch:0.0} vs tense {tense.Pitch:0.0}");
        Assert.True(energetic.Notes > 1.5 * sad.Notes, $"density energetic {energetic.Notes:0} vs sad {sad.Notes:0} notes");
        Assert.True(sad.Legato > energetic.Legato + 0.2, $"articulation sad {sad.Legato:0.00} vs energetic {energetic.Legato:0.00}");
    }

    [Fact]
    public void AttributeSamplingRespectsTheSpace()
    {
        var space = new AttributeSpace { Genres = [Genre.Jazz, Genre.Latin], Moods = [Mood.Calm], MinTempo = 100, MaxTempo = 120 };
        var seen = new HashSet<Genre>();
        for (int i = 0; i < 200; i++)
        {
            var a = space.Sample(new Random(i));
            seen.Add(a.Genre);
            Assert.Equal(Mood.Calm, a.Mood);
            Assert.InRange(a.TempoBpm, 100, 120);
            Assert.Contains(a.Mode, new[] { Mode.Major, Mode.Dorian, Mode.Lydian, Mode.Mixolydian });
            Assert.True(System.Numerics.BitOperations.PopCount((uint)a.Texture) >= 2);
        }
        Assert.Equal(2, seen.Count);

        var all = Enumerable.Range(0, 3000).Select(i => new AttributeSpace().Sample(new Random(i))).ToList();
        Assert.Equal(Enum.GetValues<Genre>().Length, all.Select(a => a.Genre).Distinct().Count());
        Assert.Equal(Enum.GetValues<Mood>().Length, all.Select(a => a.Mood).Distinct().Count());
        Assert.Equal(3, all.Select(a => a.TempoFeel).Distinct().Count());
        Assert.All(all, a => Assert.InRange(a.TempoBpm, 60, 180));
        Assert.Contains(all, a => a.BeatsPerBar == 3);
        Assert.DoesNotContain(all, a => a.Genre == Genre.Classical && a.Drums is not null);
    }

    [Fact]
    public void RejectsAttributesItCannotCompose()
    {
        var e = Assert.Throws<ArgumentException>(() => Composer.Compose(Fixed(Genre.Rock, Mood.Happy, 200), new Random(0)));
        Assert.Contains("200 BPM", e.Message);
        var bad = Fixed(Genre.Rock, Mood.Happy, 120) with { BeatsPerBar = 5 };
        Assert.Contains("5 beats", Assert.Throws<ArgumentException>(() => Composer.Compose(bad, new Random(0))).Message);
    }
}
