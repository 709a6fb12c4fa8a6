namespace MeLFusion.Native.Tests.Data;

/// <summary>
/// A small, independent Standard MIDI File parser for the tests: checks chunk structure strictly (running status
/// included) and pairs note-ons with note-offs, so a writer bug shows up as a parse failure or a wrong note.
/// </summary>
internal sealed class SmfReader
{
    public sealed record MetaEvent(int Tick, int Type, byte[] Data);
    public sealed record ChannelEvent(int Tick, int Status, byte[] Data)
    {
        public int Kind => Status & 0xF0;
        public int Channel => Status & 0x0F;
    }

    public sealed record ParsedNote(int Track, int Channel, int Start, int End, int Pitch, int Velocity);

    public sealed class Track
    {
        public List<MetaEvent> Meta { get; } = [];
        public List<ChannelEvent> Events { get; } = [];
        public int EndTick { get; set; } = -1;
    }

    public int Format { get; private init; }
    public int Division { get; private init; }
    public List<Track> Tracks { get; } = [];

    public static SmfReader Parse(byte[] file)
    {
        int pos = 0;
        Expect(file, ref pos, "MThd");
        Assert.Equal(6, ReadBigEndian(file, ref pos, 4));
        int format = ReadBigEndian(file, ref pos, 2), tracks = ReadBigEndian(file, ref pos, 2), division = ReadBigEndian(file, ref pos, 2);
        var smf = new SmfReader { Format = format, Division = division };
        for (int t = 0; t < tracks; t++)
        {
            Expect(file, ref pos, "MTrk");
            int length = ReadBigEndian(file, ref pos, 4);
            int end = pos + length;
            Assert.True(end <= file.Length, $"track {t} claims {length} bytes past the end of the file");
            smf.Tracks.Add(ReadTrack(file, ref pos, end));
            Assert.Equal(end, pos);
        }
        Assert.Equal(file.Length, pos);
        return smf;
    }

    private static Track ReadTrack(byte[] f, ref int pos, int end)
    {
        var track = new Track();
        int tick = 0, status = 0;
        while (pos < end)
        {
            Assert.True(track.EndTick < 0, "events after the end-of-track meta event");
            tick += ReadVariableLength(f, ref pos);
            int b = f[pos];
            if (b == 0xFF)
            {
                int type = f[pos + 1];
                pos += 2;
                int length = ReadVariableLength(f, ref pos);
                var data = f.AsSpan(pos, length).ToArray();
                pos += length;
                if (type == 0x2F) track.EndTick = tick;
                else track.Meta.Add(new MetaEvent(tick, type, data));
                continue;
            }
            Assert.NotEqual(0xF0, b & 0xF0); // no sysex in our files
            if ((b & 0x80) != 0)
            {
                status = b;
                pos++;
            }
            Assert.True(status != 0, "running status without a previous status byte");
            int dataBytes = (status & 0xF0) is 0xC0 or 0xD0 ? 1 : 2;
            var bytes = f.AsSpan(pos, dataBytes).ToArray();
            Assert.All(bytes, d => Assert.True(d < 0x80, "data byte with the high bit set"));
            pos += dataBytes;
            track.Events.Add(new ChannelEvent(tick, status, bytes));
        }
        Assert.True(track.EndTick >= 0, "track without an end-of-track meta event");
        return track;
    }

    /// <summary>Notes of every track: each note-on (velocity > 0) closed by the next note-off or zero-velocity note-on of its key.</summary>
    public List<ParsedNote> Notes()
    {
        var notes = new List<ParsedNote>();
        for (int t = 0; t < Tracks.Count; t++)
        {
            var open = new Dictionary<(int Channel, int Pitch), (int Start, int Velocity)>();
            foreach (var e in Tracks[t].Events)
            {
                bool on = e.Kind == 0x90 && e.Data[1] > 0, off = e.Kind == 0x80 || (e.Kind == 0x90 && e.Data[1] == 0);
                var key = (e.Channel, (int)e.Data[0]);
                if (on)
                {
                    Assert.False(open.ContainsKey(key), $"track {t}: key {key} struck again at tick {e.Tick} before its note-off");
                    open[key] = (e.Tick, e.Data[1]);
                }
                else if (off && open.Remove(key, out var started))
                {
                    notes.Add(new ParsedNote(t, e.Channel, started.Start, e.Tick, e.Data[0], started.Velocity));
                }
            }
            Assert.True(open.Count == 0, $"track {t}: {open.Count} notes never released");
        }
        return notes;
    }

    public int TempoMicroseconds
    {
        get
        {
            var tempo = Tracks[0].Meta.Single(m => m.Type == 0x51);
            return tempo.Data[0] << 16 | tempo.Data[1] << 8 | tempo.Data[2];
        }
    }

    private static void Expect(byte[] f, ref int pos, string id)
    {
        Assert.Equal(id, System.Text.Encoding.ASCII.GetString(f, pos, 4));
        pos += 4;
    }

    private static int ReadBigEndian(byte[] f, ref int pos, int bytes)
    {
        int value = 0;
        for (int i = 0; i < bytes; i++) value = value << 8 | f[pos++];
        return value;
    }

    public static int ReadVariableLength(byte[] f, ref int pos)
    {
        int value = 0;
        for (int i = 0; i < 4; i++)
        {
            byte b = f[pos++];
            value = value << 7 | (b & 0x7F);
            if ((b & 0x80) == 0) return value;
        }
        throw new Xunit.Sdk.XunitException("variable-length quantity longer than 4 bytes");
    }
}
