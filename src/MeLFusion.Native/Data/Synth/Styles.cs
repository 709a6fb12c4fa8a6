namespace MeLFusion.Native.Data.Synth;

/// <summary>
/// What a genre sounds like: its instruments (General MIDI programs), how often each part plays, meter, swing,
/// chord colour, tempo leaning, and the names captions use for it.
/// </summary>
/// <param name="Swing">Where the off-beat falls as a fraction of its pair: 0.5 is straight, 2/3 is triplet swing.</param>
/// <param name="SwingSixteenths">Swing applies to 16th pairs (hip hop) rather than 8th pairs (jazz).</param>
/// <param name="TempoWeights">Relative weight of the slow, medium and fast bands.</param>
public sealed record GenreStyle(
    Genre Genre,
    Instrument[] MelodyInstruments, Instrument[] ChordInstruments, Instrument[] BassInstruments, Instrument[] DrumKits,
    double MelodyChance, double ChordsChance, double BassChance, double DrumsChance,
    double TripleMeterChance, double Swing, bool SwingSixteenths, bool Sevenths, double[] TempoWeights, string[] CaptionNames)
{
    public static readonly Instrument Piano = new(0, "piano");

    private static readonly Instrument ElectricPiano = new(4, "electric piano"), Vibraphone = new(11, "vibraphone"),
        Flute = new(73, "flute"), NylonGuitar = new(24, "nylon-string guitar"), SteelGuitar = new(25, "steel-string acoustic guitar"),
        UprightBass = new(32, "upright bass"), FingerBass = new(33, "electric bass"), SynthBass = new(38, "synth bass"),
        Strings = new(48, "string section"), Trumpet = new(56, "trumpet"), AltoSax = new(65, "alto saxophone"),
        StandardKit = new(0, "drum kit"), Tr808 = new(25, "TR-808 drum machine");

    private static readonly GenreStyle[] All =
    [
        new(Genre.Jazz,
            [new(66, "tenor saxophone"), AltoSax, Trumpet, Vibraphone, Piano, new(71, "clarinet")],
            [Piano, ElectricPiano, new(26, "hollow-body jazz guitar")],
            [UprightBass],
            [new(32, "jazz drum kit"), new(40, "brushed drum kit")],
            0.85, 1.0, 1.0, 0.9, 0.0, 2.0 / 3, false, true, [0.6, 1.0, 0.8],
            ["jazz", "small-combo jazz", "swing jazz", "bebop-flavoured jazz"]),
        new(Genre.Rock,
            [new(29, "overdriven lead guitar"), new(30, "distorted lead guitar"), new(27, "clean electric guitar"), new(16, "drawbar organ")],
            [new(30, "distorted rhythm guitar"), new(29, "overdriven rhythm guitar"), new(27, "clean electric guitar"), new(18, "rock organ")],
            [FingerBass, new(34, "picked electric bass")],
            [StandardKit, new(16, "power drum kit")],
            0.8, 1.0, 1.0, 1.0, 0.0, 0.5, false, false, [0.4, 1.0, 1.0],
            ["rock", "guitar rock", "classic rock", "garage rock"]),
        new(Genre.Classical,
            [new(40, "violin"), Flute, new(68, "oboe"), new(71, "clarinet"), new(42, "cello"), Piano],
            [Strings, Piano, new(46, "harp"), new(6, "harpsichord")],
            [new(43, "double bass"), new(42, "cello")],
            [],
            0.9, 1.0, 0.85, 0.0, 0.3, 0.5, false, false, [1.0, 1.0, 0.7],
            ["classical", "classical chamber", "chamber music", "baroque-inspired classical"]),
        new(Genre.Electronic,
            [new(81, "sawtooth synth lead"), new(80, "square-wave synth lead"), new(98, "crystal synth bell"), new(85, "synth voice lead")],
            [new(90, "polysynth"), new(89, "analog synth pad"), new(50, "synth string section"), new(91, "choir pad")],
            [SynthBass, new(39, "analog synth bass")],
            [new(24, "electronic drum kit"), Tr808],
            0.75, 0.85, 1.0, 1.0, 0.0, 0.5, false, false, [0.3, 1.0, 1.0],
            ["electronic", "electronic dance", "house", "synth-based electronic"]),
        new(Genre.Folk,
            [new(110, "fiddle"), Flute, new(22, "harmonica"), new(105, "banjo"), new(21, "accordion")],
            [SteelGuitar, NylonGuitar],
            [UprightBass],
            [new(8, "tambourine with a kick drum")],
            0.85, 1.0, 0.7, 0.45, 0.25, 0.5, false, false, [0.7, 1.0, 0.7],
            ["folk", "acoustic folk", "traditional folk", "americana folk"]),
        new(Genre.Ambient,
            [new(8, "celesta"), new(9, "glockenspiel"), new(10, "music box"), new(75, "pan flute"), Vibraphone, new(79, "ocarina")],
            [new(88, "new age synth pad"), new(89, "analog synth pad"), new(91, "choir pad"), new(94, "halo pad"), new(95, "sweep pad"), new(52, "choir")],
            [new(35, "fretless bass"), SynthBass],
            [new(0, "shakers with a triangle")],
            0.7, 1.0, 0.5, 0.2, 0.0, 0.5, false, true, [1.0, 0.5, 0.15],
            ["ambient", "new age ambient", "ambient soundscape", "drone-based ambient"]),
        new(Genre.HipHop,
            [ElectricPiano, Vibraphone, Flute, new(61, "brass section"), Piano],
            [ElectricPiano, Piano, Strings, new(5, "FM electric piano")],
            [SynthBass, FingerBass],
            [Tr808, new(0, "sampled drum kit")],
            0.5, 1.0, 0.9, 1.0, 0.0, 0.58, true, true, [0.6, 1.0, 0.3],
            ["hip hop", "instrumental hip hop", "boom-bap hip hop", "jazzy hip hop"]),
        new(Genre.Latin,
            [Trumpet, NylonGuitar, Flute, new(12, "marimba"), Piano, AltoSax],
            [Piano, NylonGuitar, new(21, "accordion")],
            [UprightBass, FingerBass],
            [new(0, "latin hand percussion (congas, claves, maracas)")],
            0.8, 1.0, 1.0, 1.0, 0.0, 0.5, false, false, [0.4, 1.0, 0.9],
            ["latin", "salsa", "afro-cuban", "latin jazz"]),
    ];

    public static GenreStyle Of(Genre genre) => All[(int)genre];
}

/// <summary>How a mood shapes the music: velocities, register, note density, articulation, effects, mode and tempo leanings.</summary>
/// <param name="Velocity">Base MIDI velocity of the melody; other parts scale from it.</param>
/// <param name="RegisterShift">Semitones the melody and chord registers move from their centres.</param>
/// <param name="Density">0..1, how many rhythmic slots get a note.</param>
/// <param name="Articulation">Sounding fraction of a note's slot: about 0.5 is staccato, 1 is legato.</param>
/// <param name="Reverb">MIDI CC 91 send.</param>
/// <param name="Chorus">MIDI CC 93 send.</param>
public sealed record MoodStyle(
    Mood Mood, int Velocity, int RegisterShift, double Density, double Articulation, int Reverb, int Chorus,
    (Mode Mode, double Weight)[] ModeWeights, double[] TempoWeights)
{
    private static readonly MoodStyle[] All =
    [
        new(Mood.Happy, 96, 5, 0.75, 0.6, 40, 20,
            [(Mode.Major, 0.6), (Mode.Mixolydian, 0.25), (Mode.Lydian, 0.15)], [0.15, 0.45, 0.4]),
        new(Mood.Sad, 62, -5, 0.35, 0.97, 75, 20,
            [(Mode.Minor, 0.65), (Mode.Dorian, 0.25), (Mode.Phrygian, 0.1)], [0.55, 0.35, 0.1]),
        new(Mood.Calm, 60, 0, 0.35, 0.95, 70, 30,
            [(Mode.Major, 0.5), (Mode.Dorian, 0.2), (Mode.Lydian, 0.15), (Mode.Mixolydian, 0.15)], [0.55, 0.35, 0.1]),
        new(Mood.Energetic, 112, 2, 0.9, 0.55, 30, 10,
            [(Mode.Major, 0.35), (Mode.Minor, 0.3), (Mode.Mixolydian, 0.2), (Mode.Dorian, 0.15)], [0.05, 0.3, 0.65]),
        new(Mood.Tense, 90, -7, 0.65, 0.7, 50, 0,
            [(Mode.Minor, 0.5), (Mode.Phrygian, 0.35), (Mode.Dorian, 0.15)], [0.25, 0.4, 0.35]),
        new(Mood.Dreamy, 56, 9, 0.3, 1.0, 120, 90,
            [(Mode.Lydian, 0.4), (Mode.Major, 0.3), (Mode.Dorian, 0.3)], [0.55, 0.35, 0.1]),
    ];

    public static MoodStyle Of(Mood mood) => All[(int)mood];

    /// <summary>Moods that play short, detached notes and busy accompaniment.</summary>
    public bool Driving => Density >= 0.6;
}

/// <summary>General MIDI facts the composer needs: playable ranges and drum-map notes.</summary>
public static class GeneralMidi
{
    /// <summary>MIDI channel (0-based) the GM standard reserves for percussion: channel 10 counted from 1.</summary>
    public const int DrumChannel = 9;

    public const int Kick = 36, SideStick = 37, Snare = 38, Clap = 39, ClosedHat = 42, LowTom = 45, PedalHat = 44,
        OpenHat = 46, HighTom = 50, Crash = 49, Ride = 51, Tambourine = 54, Cowbell = 56, MuteHighConga = 62,
        OpenHighConga = 63, LowConga = 64, Cabasa = 69, Maracas = 70, Claves = 75, OpenTriangle = 81;

    /// <summary>
    /// The family of a melodic GM program (0–127), following the GM program groups: piano 0–7 (pianos, electric
    /// pianos, harpsichord, clavinet); mallets 8–15 (celesta to dulcimer) with kalimba 108 and the pitched percussion
    /// 112–119; organ 16–23 (organs, accordions, harmonica); guitar 24–39 (guitars and basses) with sitar, banjo,
    /// shamisen and koto 104–107; strings 40–55 (solo strings, ensembles, harp, choirs) with fiddle 110; brass and reeds
    /// 56–71 with bagpipe 109 and shanai 111; flutes 72–79; synth 80–103 (leads, pads, effects) and the sound effects
    /// 120–127. The styles' lead instruments cover all eight.
    /// </summary>
    public static InstrumentFamily Family(int program) => program switch
    {
        < 0 or > 127 => throw new ArgumentOutOfRangeException(nameof(program), program, "a General MIDI program is 0..127"),
        <= 7 => InstrumentFamily.Piano,
        <= 15 or 108 or (>= 112 and <= 119) => InstrumentFamily.Mallets,
        <= 23 => InstrumentFamily.Organ,
        <= 39 or (>= 104 and <= 107) => InstrumentFamily.Guitar,
        <= 55 or 110 => InstrumentFamily.Strings,
        <= 71 or 109 or 111 => InstrumentFamily.BrassAndReeds,
        <= 79 => InstrumentFamily.Flutes,
        _ => InstrumentFamily.Synth,
    };

    /// <summary>Comfortable sounding range (MIDI notes) of the programs the styles use.</summary>
    public static (int Low, int High) Range(int program) => program switch
    {
        0 or 4 or 5 or 6 => (36, 96),
        8 => (60, 96),
        9 => (72, 100),
        10 => (60, 96),
        11 or 12 => (53, 89),
        16 or 18 => (36, 91),
        21 => (53, 89),
        22 => (60, 88),
        24 or 25 or 26 or 27 or 29 or 30 => (40, 84),
        32 or 33 or 34 or 35 or 38 or 39 or 43 => (28, 60),
        40 or 110 => (55, 96),
        42 => (36, 76),
        46 => (36, 96),
        48 or 50 or 52 or 61 => (40, 84),
        56 => (54, 82),
        65 => (49, 81),
        66 => (44, 76),
        68 => (58, 91),
        71 => (50, 89),
        73 or 75 or 79 => (60, 93),
        105 => (48, 84),
        _ => (36, 96),
    };
}
