using System.Diagnostics;
using MeLFusion.Native.Data.Synth;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Data;

public sealed class MidiFileTests(ITestOutputHelper output)
{
    private static Score TwoPartScore(List<Note> melody, List<Note>? drums = null) => new(
        480, 120, 3, 2, 9, Mode.Minor, [Harmony.Diatonic(9, Mode.Minor, 0, false)],
        [
            new ScorePart("melody", Texture.Melody, 0, 73, 110, 40, 10, melody),
            new ScorePart("drums", Texture.Percussion, GeneralMidi.DrumChannel, 32, 100, 20, 0, drums ?? [new Note(0, 120, GeneralMidi.Kick, 100)]),
        ]);

    [Fact]
    public void WritesFormat1WithConductorTrackAndNotes()
    {
        var melody = new List<Note> { new(0, 480, 69, 90), new(480, 240, 72, 80), new(960, 1920, 76, 127) };
        var smf = SmfReader.Parse(MidiFile.Encode(TwoPartScore(melody)));

        Assert.Equal(1, smf.Format);
        Assert.Equal(480, smf.Division);
        Assert.Equal(3, smf.Tracks.Count);
        Assert.Equal(500_000, smf.TempoMicroseconds); // 120 BPM
        var meter = smf.Tracks[0].Meta.Single(m => m.Type == 0x58);
        Assert.Equal(new byte[] { 3, 2, 24, 8 }, meter.Data);
        var key = smf.Tracks[0].Meta.Single(m => m.Type == 0x59);
        Assert.Equal(new byte[] { 0, 1 }, key.Data); // A minor: no accidentals, minor flag
        Assert.Empty(smf.Tracks[0].Events);
        Assert.Equal(2 * 3 * 480, smf.Tracks[0].EndTick);

        var setup = smf.Tracks[1].Events.TakeWhile(e => e.Kind != 0x90).ToList();
        Assert.Contains(setup, e => e.Kind == 0xC0 && e.Data[0] == 73);
        Assert.Contains(setup, e => e.Kind == 0xB0 && e.Data[0] == 7 && e.Data[1] == 110);
        Assert.Contains(setup, e => e.Kind == 0xB0 && e.Data[0] == 91 && e.Data[1] == 40);
        var notes = smf.Notes();
        Assert.Equal(
            [(1, 0, 0, 480, 69, 90), (1, 0, 480, 720, 72, 80), (1, 0, 960, 2880, 76, 127), (2, 9, 0, 120, 36, 100)],
            notes.Select(n => (n.Track, n.Channel, n.Start, n.End, n.Pitch, n.Velocity)).OrderBy(n => n.Item1).ThenBy(n => n.Item3));
        Assert.Equal(2880, smf.Tracks[1].EndTick); // the last note's end is past the score length
        Assert.Contains(smf.Tracks[2].Events, e => e.Kind == 0xC0 && e.Channel == 9 && e.Data[0] == 32);
    }

    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(0x40, new byte[] { 0x40 })]
    [InlineData(0x7F, new byte[] { 0x7F })]
    [InlineData(0x80, new byte[] { 0x81, 0x00 })]
    [InlineData(0x2000, new byte[] { 0xC0, 0x00 })]
    [InlineData(0x3FFF, new byte[] { 0xFF, 0x7F })]
    [InlineData(0x4000, new byte[] { 0x81, 0x80, 0x00 })]
    [InlineData(0x0FFFFFFF, new byte[] { 0xFF, 0xFF, 0xFF, 0x7F })]
    public void VariableLengthQuantitiesMatchTheSpecExamples(int value, byte[] expected)
    {
        using var stream = new MemoryStream();
        MidiFile.WriteVariableLength(stream, value);
        Assert.Equal(expected, stream.ToArray());
    }

    [Fact]
    public void RestruckKeysGetTheirOwnNoteOffs()
    {
        // The second C starts while the first still sounds; the duplicate E at tick 0 sounds once.
        var melody = new List<Note> { new(0, 960, 60, 90), new(480, 480, 60, 90), new(0, 100, 64, 90), new(0, 200, 64, 70) };
        var notes = SmfReader.Parse(MidiFile.Encode(TwoPartScore(melody))).Notes().Where(n => n.Track == 1).OrderBy(n => n.Start).ThenBy(n => n.Pitch).ToList();
        Assert.Equal([(0, 480, 60), (0, 100, 64), (480, 960, 60)], notes.Select(n => (n.Start, n.End, n.Pitch)));
    }

    [Fact]
    public void RejectsValuesOutsideMidiRanges()
    {
        var e = Assert.Throws<ArgumentException>(() => MidiFile.Encode(TwoPartScore([new Note(0, 10, 128, 90)])));
        Assert.Contains("pitch 128", e.Message);
        e = Assert.Throws<ArgumentException>(() => MidiFile.Encode(TwoPartScore([new Note(0, 0, 60, 90)])));
        Assert.Contains("length 0", e.Message);
    }

    [Fact]
    public void MidoReadsComposedFilesTheSameWay()
    {
        var space = new AttributeSpace();
        string dir = Directory.CreateTempSubdirectory("melfusion-midi-").FullName;
        try
        {
            var expected = new List<string>();
            for (int i = 0; i < 8; i++)
            {
                var attributes = space.Sample(new Random(100 + i));
                var score = Composer.Compose(attributes, new Random(200 + i));
                string path = Path.Combine(dir, $"{i}.mid");
                MidiFile.Write(path, score);
                var smf = SmfReader.Parse(File.ReadAllBytes(path));
                var notes = smf.Notes();
                expected.Add($"{smf.Tracks.Count} {smf.Division} {smf.TempoMicroseconds} {notes.Count} {notes.Sum(n => (long)n.Start + n.End + n.Pitch)}");
            }
            const string script = """
                import sys, mido
                for path in sys.argv[1:]:
                    mid = mido.MidiFile(path)
                    assert mid.type == 1
                    tempo = [m.tempo for m in mid.tracks[0] if m.type == 'set_tempo']
                    count, checksum = 0, 0
                    for track in mid.tracks:
                        tick, opened = 0, {}
                        for m in track:
                            tick += m.time
                            if m.type == 'note_on' and m.velocity > 0:
                                opened[(m.channel, m.note)] = tick
                            elif m.type in ('note_off', 'note_on') and (m.channel, m.note) in opened:
                                start = opened.pop((m.channel, m.note))
                                count += 1
                                checksum += start + tick + m.note
                    print(len(mid.tracks), mid.ticks_per_beat, tempo[0], count, checksum)
                """;
            var actual = RunMido(script, Enumerable.Range(0, 8).Select(i => Path.Combine(dir, $"{i}.mid")));
            if (actual is null) return;
            Assert.Equal(expected, actual);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Runs a script under Debian's python3 with mido; null (and a note in the output) when mido is absent.</summary>
    private List<string>? RunMido(string script, IEnumerable<string> args)
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python) || Run(python, ["-c", "import mido"]).ExitCode != 0)
        {
            output.WriteLine("python3-mido is not installed: only the hand-written parser checked the files");
            return null;
        }
        var (code, stdout, stderr) = Run(python, ["-c", script, .. args]);
        Assert.True(code == 0, $"mido failed: {stderr}");
        output.WriteLine($"mido agrees on: {stdout}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(string exe, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "python did not finish");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
