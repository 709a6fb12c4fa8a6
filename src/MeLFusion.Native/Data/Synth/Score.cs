namespace MeLFusion.Native.Data.Synth;

/// <summary>One note: start and length in MIDI ticks, MIDI pitch, velocity 1..127.</summary>
public readonly record struct Note(int Start, int Duration, int Pitch, int Velocity)
{
    public int End => Start + Duration;
}

/// <summary>One instrument part on its own MIDI channel.</summary>
/// <param name="Role">Which texture layer this part is.</param>
/// <param name="Program">GM program, or the drum kit on the percussion channel.</param>
/// <param name="Volume">MIDI CC 7.</param>
public sealed record ScorePart(string Name, Texture Role, int Channel, int Program, int Volume, int Reverb, int Chorus, List<Note> Notes);

/// <summary>A composed piece: constant tempo and meter, one progression looped per 4 bars, a few parts.</summary>
public sealed record Score(int TicksPerQuarter, int TempoBpm, int BeatsPerBar, int Bars, int Tonic, Mode Mode, Chord[] Progression, IReadOnlyList<ScorePart> Parts)
{
    public int TicksPerBar => TicksPerQuarter * BeatsPerBar;
    public int LengthTicks => Bars * TicksPerBar;

    /// <summary>Microseconds per quarter note, as the MIDI tempo meta event stores it.</summary>
    public int MicrosecondsPerQuarter => (int)Math.Round(60_000_000.0 / TempoBpm);

    public double Seconds(int ticks) => ticks * (double)MicrosecondsPerQuarter / TicksPerQuarter / 1e6;

    /// <summary>The key signature meta values: sharps (positive) or flats (negative), and whether the key is minor.</summary>
    public (int Accidentals, bool Minor) KeySignature => (Harmony.KeySignature(Tonic, Mode), Mode == Mode.Minor);
}
