using System.Text;

namespace MeLFusion.Native.Data.Synth;

/// <summary>
/// Standard MIDI File writer, format 1: track 0 holds the tempo, meter and key signature; each part gets its own
/// track with its name, program, volume and effect sends, then its notes. Overlapping notes of one pitch on one channel
/// are shortened so every note-on has its own note-off.
/// </summary>
public static class MidiFile
{
    private const byte NoteOff = 0x80, NoteOn = 0x90, ControlChange = 0xB0, ProgramChange = 0xC0, Meta = 0xFF;
    private const byte MetaTrackName = 0x03, MetaEndOfTrack = 0x2F, MetaTempo = 0x51, MetaTimeSignature = 0x58, MetaKeySignature = 0x59;
    private const byte CcVolume = 7, CcPan = 10, CcReverb = 91, CcChorus = 93;

    /// <summary>An event at a tick; <paramref name="Order"/> sorts events at the same tick (set-up, then note-offs, then note-ons).</summary>
    private readonly record struct Event(int Tick, int Order, byte[] Bytes);

    public static void Write(string path, Score score) => File.WriteAllBytes(path, Encode(score));

    public static byte[] Encode(Score score)
    {
        if (score.TicksPerQuarter is <= 0 or > 0x7FFF) throw new ArgumentException($"ticks per quarter {score.TicksPerQuarter} must be 1..32767");
        if (score.Parts.Count > 15) throw new ArgumentException($"{score.Parts.Count} parts do not fit a format 1 file of at most 16 tracks here");
        using var output = new MemoryStream();
        output.Write("MThd"u8);
        WriteUInt32(output, 6);
        WriteUInt16(output, 1);
        WriteUInt16(output, (ushort)(score.Parts.Count + 1));
        WriteUInt16(output, (ushort)score.TicksPerQuarter);
        WriteTrack(output, ConductorEvents(score), score.LengthTicks);
        foreach (var part in score.Parts)
            WriteTrack(output, PartEvents(part), Math.Max(score.LengthTicks, part.Notes.Count == 0 ? 0 : part.Notes.Max(n => n.End)));
        return output.ToArray();
    }

    private static List<Event> ConductorEvents(Score score)
    {
        int tempo = score.MicrosecondsPerQuarter;
        var (accidentals, minor) = score.KeySignature;
        return
        [
            MetaEvent(MetaTrackName, Encoding.ASCII.GetBytes("melfusion synth")),
            MetaEvent(MetaTimeSignature, [(byte)score.BeatsPerBar, 2, 24, 8]),
            MetaEvent(MetaKeySignature, [(byte)(sbyte)accidentals, (byte)(minor ? 1 : 0)]),
            MetaEvent(MetaTempo, [(byte)(tempo >> 16), (byte)(tempo >> 8), (byte)tempo]),
        ];
    }

    private static List<Event> PartEvents(ScorePart part)
    {
        if (part.Channel is < 0 or > 15) throw new ArgumentException($"part '{part.Name}': channel {part.Channel} is not 0..15");
        byte ch = (byte)part.Channel;
        var events = new List<Event>
        {
            MetaEvent(MetaTrackName, Encoding.ASCII.GetBytes(part.Name)),
            new(0, 0, [(byte)(ProgramChange | ch), Data7(part.Program, "program")]),
            new(0, 0, [(byte)(ControlChange | ch), CcVolume, Data7(part.Volume, "volume")]),
            new(0, 0, [(byte)(ControlChange | ch), CcPan, 64]),
            new(0, 0, [(byte)(ControlChange | ch), CcReverb, Data7(part.Reverb, "reverb")]),
            new(0, 0, [(byte)(ControlChange | ch), CcChorus, Data7(part.Chorus, "chorus")]),
        };
        // Per pitch: the start of the previous note and the index of its note-off in the list.
        var previous = new Dictionary<int, (int Start, int OffIndex)>();
        foreach (var note in part.Notes.OrderBy(n => n.Start).ThenBy(n => n.Pitch))
        {
            if (note.Start < 0 || note.Duration <= 0) throw new ArgumentException($"part '{part.Name}': note at tick {note.Start} with length {note.Duration}");
            byte pitch = Data7(note.Pitch, "pitch");
            byte velocity = (byte)Math.Clamp(note.Velocity, 1, 127);
            if (previous.TryGetValue(pitch, out var last))
            {
                if (last.Start == note.Start) continue; // the same key struck twice at once sounds once
                var off = events[last.OffIndex];
                if (off.Tick > note.Start) events[last.OffIndex] = off with { Tick = note.Start }; // restrike: end the previous note here
            }
            events.Add(new Event(note.Start, 2, [(byte)(NoteOn | ch), pitch, velocity]));
            events.Add(new Event(note.End, 1, [(byte)(NoteOff | ch), pitch, 64]));
            previous[pitch] = (note.Start, events.Count - 1);
        }
        return events;
    }

    private static byte Data7(int value, string what) =>
        value is >= 0 and <= 127 ? (byte)value : throw new ArgumentException($"MIDI {what} {value} is outside 0..127");

    private static Event MetaEvent(byte type, byte[] payload)
    {
        using var bytes = new MemoryStream();
        bytes.WriteByte(Meta);
        bytes.WriteByte(type);
        WriteVariableLength(bytes, payload.Length);
        bytes.Write(payload);
        return new Event(0, 0, bytes.ToArray());
    }

    private static void WriteTrack(Stream output, List<Event> events, int endTick)
    {
        using var body = new MemoryStream();
        int tick = 0;
        // A stable sort keeps each part's set-up events in the order they were added.
        foreach (var e in events.Select((e, i) => (e, i)).OrderBy(p => p.e.Tick).ThenBy(p => p.e.Order).ThenBy(p => p.i).Select(p => p.e))
        {
            WriteVariableLength(body, e.Tick - tick);
            body.Write(e.Bytes);
            tick = e.Tick;
        }
        WriteVariableLength(body, Math.Max(0, endTick - tick));
        body.Write([Meta, MetaEndOfTrack, 0]);
        output.Write("MTrk"u8);
        WriteUInt32(output, (uint)body.Length);
        body.WriteTo(output);
    }

    /// <summary>MIDI variable-length quantity: 7 bits per byte, most significant first, high bit set on all but the last.</summary>
    internal static void WriteVariableLength(Stream output, int value)
    {
        if (value is < 0 or > 0x0FFFFFFF) throw new ArgumentOutOfRangeException(nameof(value), value, "variable-length quantities hold 0..0x0FFFFFFF");
        Span<byte> buffer = stackalloc byte[4];
        int count = 0;
        do
        {
            buffer[count++] = (byte)(value & 0x7F);
            value >>= 7;
        } while (value > 0);
        for (int i = count - 1; i >= 0; i--) output.WriteByte((byte)(buffer[i] | (i > 0 ? 0x80 : 0)));
    }

    private static void WriteUInt32(Stream s, uint v) => s.Write([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);

    private static void WriteUInt16(Stream s, ushort v) => s.Write([(byte)(v >> 8), (byte)v]);
}
