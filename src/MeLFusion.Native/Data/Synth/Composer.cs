namespace MeLFusion.Native.Data.Synth;

/// <summary>
/// Composes a piece from attributes: a 4-chord progression looped per 4-bar phrase; a melody in call (bars 1-2,
/// rising, open ending) and response (bars 3-4, falling to the tonic) built from chord tones on strong beats and
/// passing or neighbour tones between them, varied and lifted in every second phrase; genre-specific accompaniment,
/// bass lines and drum patterns; mood-specific velocity, register, density and articulation.
/// Everything random comes from the given <see cref="Random"/>, so one seed gives one piece.
/// </summary>
public static class Composer
{
    public const int TicksPerQuarter = 480;

    /// <summary>Seconds of music composed at least: the 10.24 s clip plus room so the crop never meets the end.</summary>
    public const double MinimumSeconds = 11.0;

    public const int MelodyChannel = 0, ChordChannel = 1, BassChannel = 2;

    /// <summary>Bars needed to cover <see cref="MinimumSeconds"/>, rounded up to whole 4-bar phrases.</summary>
    public static int BarsFor(int bpm, int beatsPerBar)
    {
        int bars = (int)Math.Ceiling(MinimumSeconds * bpm / (60.0 * beatsPerBar));
        return (bars + 3) / 4 * 4;
    }

    public static Score Compose(MusicAttributes attributes, Random rng)
    {
        if (attributes.TempoBpm is < MusicAttributes.MinTempo or > MusicAttributes.MaxTempo)
            throw new ArgumentException($"tempo {attributes.TempoBpm} BPM is outside {MusicAttributes.MinTempo}-{MusicAttributes.MaxTempo}");
        if (attributes.BeatsPerBar is not (3 or 4)) throw new ArgumentException($"{attributes.BeatsPerBar} beats per bar: only 3 and 4 are composed");
        return new Arranger(attributes, rng).Arrange();
    }

    /// <summary>The state of one composition; its methods write one part each.</summary>
    private sealed class Arranger
    {
        private const int Step = TicksPerQuarter / 4; // a 16th note: rhythm patterns count in these

        private readonly MusicAttributes _a;
        private readonly Random _rng;
        private readonly GenreStyle _genre;
        private readonly MoodStyle _mood;
        private readonly Chord[] _progression;
        private readonly int _bars, _stepsPerBar, _ticksPerBar;
        private readonly bool _driving;

        public Arranger(MusicAttributes attributes, Random rng)
        {
            _a = attributes;
            _rng = rng;
            _genre = GenreStyle.Of(attributes.Genre);
            _mood = MoodStyle.Of(attributes.Mood);
            _progression = Harmony.Progression(attributes, rng);
            _bars = BarsFor(attributes.TempoBpm, attributes.BeatsPerBar);
            _stepsPerBar = 4 * attributes.BeatsPerBar;
            _ticksPerBar = TicksPerQuarter * attributes.BeatsPerBar;
            _driving = _mood.Driving;
        }

        public Score Arrange()
        {
            var parts = new List<ScorePart>();
            int reverb = _mood.Reverb + (_a.Genre == Genre.Ambient ? 20 : 0);
            if (_a.Melody is { } melody)
                parts.Add(new ScorePart("melody", Texture.Melody, MelodyChannel, melody.Program, 110, Math.Min(127, reverb), _mood.Chorus, Melody(melody)));
            if (_a.Chords is { } chords)
                parts.Add(new ScorePart("chords", Texture.Chords, ChordChannel, chords.Program, 82, Math.Min(127, reverb), _mood.Chorus, Chords(chords)));
            if (_a.Bass is { } bass)
                parts.Add(new ScorePart("bass", Texture.Bass, BassChannel, bass.Program, 104, reverb / 3, 0, Bass(bass)));
            if (_a.Drums is { } drums)
                parts.Add(new ScorePart("drums", Texture.Percussion, GeneralMidi.DrumChannel, drums.Program, 100, reverb / 2, 0, Drums()));
            return new Score(TicksPerQuarter, _a.TempoBpm, _a.BeatsPerBar, _bars, _a.Tonic, _a.Mode, _progression, parts);
        }

        private Chord ChordAt(int bar) => _progression[bar % _progression.Length];

        private static int Mod(int value, int m) => (value % m + m) % m;

        private int Tick(int bar, int step) => bar * _ticksPerBar + step * Step;

        /// <summary>Delays the second note of each swung pair (8ths for jazz, 16ths for hip hop) by the genre's swing ratio.</summary>
        private int Swing(int tick)
        {
            double ratio = _genre.Swing;
            if (ratio == 0.5) return tick;
            int pair = _genre.SwingSixteenths ? 2 * Step : 4 * Step;
            int start = tick / pair * pair, position = tick - start, half = pair / 2;
            double mapped = position <= half ? position * ratio / 0.5 : ratio * pair + (position - half) * (1 - ratio) / 0.5;
            return start + (int)Math.Round(mapped);
        }

        /// <summary>Adds a note with swing, a little timing and velocity variation (none in electronic music), and a minimum length.</summary>
        private void Add(List<Note> notes, int startTick, int lengthTicks, int pitch, int velocity, int jitterTicks)
        {
            int start = Swing(startTick), end = Swing(startTick + lengthTicks);
            if (_a.Genre == Genre.Electronic) jitterTicks = 0;
            if (jitterTicks > 0)
            {
                int shift = _rng.Next(-jitterTicks, jitterTicks + 1);
                start = Math.Max(0, start + shift);
                end += shift;
            }
            end = Math.Max(end, start + 12);
            notes.Add(new Note(start, end - start, pitch, Math.Clamp(velocity + _rng.Next(-5, 6), 1, 127)));
        }

        private int Velocity(double scale) => (int)Math.Round(_mood.Velocity * scale);

        // ---- melody ------------------------------------------------------------------------------------------

        private List<Note> Melody(Instrument instrument)
        {
            var notes = new List<Note>();
            var (low, high) = GeneralMidi.Range(instrument.Program);
            int center = Math.Clamp(67 + _mood.RegisterShift, low + 7, high - 9);
            var line = new MelodyLine(this, center, low, high);
            int stepsHalf = 2 * _stepsPerBar;
            var motif = MotifRhythm(stepsHalf);
            for (int phrase = 0; phrase < _bars / 4; phrase++)
            {
                // Every second phrase varies the motif and lifts the contour by a third, as an answering period would.
                bool answer = phrase % 2 == 1;
                var call = answer ? Vary(motif, stepsHalf, 0.3, 0) : motif;
                var response = Vary(call, stepsHalf, 0.4, _stepsPerBar);
                int lift = answer ? 2 : 0;
                line.Write(notes, phrase * 4, call, lift, isCall: true);
                line.Write(notes, phrase * 4 + 2, response, lift, isCall: false);
            }
            return notes;
        }

        /// <summary>Melodic grid in 16ths: quarters for floating ambient lines, 16ths for busy slow pieces, else 8ths.</summary>
        private int MelodyGrid() =>
            _a.Genre == Genre.Ambient || _a.Mood == Mood.Dreamy ? 4
            : _a.TempoBpm < 110 && _driving && _a.Genre != Genre.Jazz ? 1
            : 2;

        /// <summary>How likely a melody note starts on a 16th step: downbeats most, then beats, 8ths, 16ths; denser moods fill more.</summary>
        private double SlotChance(int step)
        {
            double d = _mood.Density;
            bool syncopated = _a.Genre is Genre.Jazz or Genre.Latin or Genre.HipHop;
            if (step % _stepsPerBar == 0) return 0.9;
            if (step % 4 == 0) return 0.35 + 0.5 * d - (syncopated ? 0.1 : 0);
            if (step % 2 == 0) return 0.05 + 0.6 * d + (syncopated ? 0.15 : 0);
            return 0.02 + 0.4 * d;
        }

        /// <summary>
        /// Onsets (16th steps) of a two-bar motif: starts on the downbeat, fills by <see cref="SlotChance"/>, and ends
        /// with one held note two beats before the end, so each half-phrase breathes.
        /// </summary>
        private List<int> MotifRhythm(int stepsHalf)
        {
            int grid = MelodyGrid(), endingStart = stepsHalf - 8;
            var onsets = new List<int> { 0 };
            for (int s = grid; s < endingStart; s += grid)
                if (_rng.NextDouble() < SlotChance(s)) onsets.Add(s);
            for (int beat = 4; onsets.Count < 3 && beat < endingStart; beat += 4)
                if (!onsets.Contains(beat)) onsets.Add(beat);
            onsets.Add(grid <= 2 && _rng.NextDouble() < 0.3 ? endingStart + 2 : endingStart);
            onsets.Sort();
            return onsets;
        }

        /// <summary>Re-draws some slots of a motif from <paramref name="from"/> on, keeping its start and ending.</summary>
        private List<int> Vary(List<int> motif, int stepsHalf, double chance, int from)
        {
            int grid = MelodyGrid(), endingStart = stepsHalf - 8;
            var result = new SortedSet<int>(motif);
            for (int s = Math.Max(grid, from); s < endingStart; s += grid)
            {
                if (_rng.NextDouble() >= chance) continue;
                if (_rng.NextDouble() < SlotChance(s)) result.Add(s);
                else result.Remove(s);
            }
            return [.. result];
        }

        /// <summary>Writes melody half-phrases in diatonic steps above a tonic near the register centre.</summary>
        private sealed class MelodyLine
        {
            private readonly Arranger _x;
            private readonly int _basePitch, _lowStep, _highStep, _centerStep, _span;
            private int _previous;

            public MelodyLine(Arranger arranger, int center, int low, int high)
            {
                _x = arranger;
                _basePitch = 60 + arranger._a.Tonic;
                while (_basePitch > center) _basePitch -= 12;
                while (_basePitch <= center - 12) _basePitch += 12;
                _lowStep = StepAtOrAbove(Math.Max(low, center - 10));
                _highStep = StepAtOrBelow(Math.Min(high, center + 10));
                _centerStep = StepAtOrAbove(center);
                _span = arranger._a.Mood switch { Mood.Happy or Mood.Energetic => 5, Mood.Sad or Mood.Calm => 3, _ => 4 };
                _previous = _centerStep;
            }

            private Mode Mode => _x._a.Mode;

            private int RawPitch(int step) => _basePitch + Harmony.Offset(Mode, step);

            private int StepAtOrAbove(int pitch)
            {
                int s = -14;
                while (RawPitch(s) < pitch) s++;
                return s;
            }

            private int StepAtOrBelow(int pitch)
            {
                int s = 28;
                while (RawPitch(s) > pitch) s--;
                return s;
            }

            private int Pitch(int step, Chord chord) => RawPitch(step) + (chord.Raised && Mod(step, 7) == 6 ? 1 : 0);

            public void Write(List<Note> notes, int firstBar, List<int> onsets, int lift, bool isCall)
            {
                var rng = _x._rng;
                int stepsHalf = 2 * _x._stepsPerBar;
                double start = _centerStep - 1 + lift;
                for (int i = 0; i < onsets.Count; i++)
                {
                    int s = onsets[i];
                    bool last = i == onsets.Count - 1;
                    var chord = _x.ChordAt(firstBar + s / _x._stepsPerBar);
                    double progress = Math.Min(1, s / (stepsHalf * 0.75));
                    // Call rises towards its peak; response falls from the peak to just under where the call began.
                    double desired = isCall ? start + _span * progress : start + _span - (_span + 1) * progress;
                    bool strong = s % 4 == 0 || i == 0;
                    int step;
                    if (last) step = isCall ? ChordTone(chord, desired, avoidTonic: true) : CadenceTone(chord, desired);
                    else if (strong) step = ChordTone(chord, desired, avoidTonic: false);
                    else
                    {
                        int direction = Math.Sign(Math.Round(desired) - _previous);
                        if (direction == 0) direction = rng.Next(2) * 2 - 1; // neighbour tone
                        step = _previous + direction * (rng.NextDouble() < 0.15 ? 2 : 1);
                    }
                    step = Math.Clamp(step, _lowStep, _highStep);
                    int pitch = Pitch(step, chord);
                    if (!strong && !last && _x._a.Mood == Mood.Tense && rng.NextDouble() < 0.25) pitch += 1; // chromatic rub
                    int next = last ? stepsHalf - 2 : onsets[i + 1];
                    double articulation = last ? Math.Max(0.9, _x._mood.Articulation) : _x._mood.Articulation;
                    int length = (int)((next - s) * Step * articulation);
                    int accent = s % _x._stepsPerBar == 0 ? 8 : s % 4 == 0 ? 3 : -4;
                    int swell = (int)(6 * (isCall ? progress : 1 - progress));
                    _x.Add(notes, _x.Tick(firstBar, s), length, pitch, _x.Velocity(1.0) + accent + swell, 8);
                    _previous = step;
                }
            }

            /// <summary>The chord tone nearest the contour, avoiding a repeat of the previous note and, at open endings, the tonic.</summary>
            private int ChordTone(Chord chord, double desired, bool avoidTonic)
            {
                var degrees = chord.Degrees.ToHashSet();
                int best = _previous;
                double bestScore = double.MaxValue;
                for (int s = _lowStep; s <= _highStep; s++)
                {
                    if (!degrees.Contains(Mod(s, 7))) continue;
                    double score = Math.Abs(s - desired) + (s == _previous ? 0.6 : 0) + (avoidTonic && Mod(s, 7) == 0 ? 1.5 : 0)
                                 + 0.3 * _x._rng.NextDouble();
                    if (score < bestScore) (best, bestScore) = (s, score);
                }
                return best;
            }

            /// <summary>The tonic if the chord holds it, else the chord's root, nearest the contour.</summary>
            private int CadenceTone(Chord chord, double desired)
            {
                int target = chord.Degrees.Contains(0) ? 0 : chord.Degree;
                int best = _previous;
                for (int s = _lowStep; s <= _highStep; s++)
                    if (Mod(s, 7) == target && (Mod(best, 7) != target || Math.Abs(s - desired) < Math.Abs(best - desired))) best = s;
                return best;
            }
        }

        // ---- chords ------------------------------------------------------------------------------------------

        /// <summary>
        /// Close-position voicing of the pitch classes around <paramref name="center"/>, choosing the inversion that moves
        /// least from the previous voicing (voice leading) and stays near the centre.
        /// </summary>
        private static int[] Voice(IReadOnlyList<int> pitchClasses, int center, int[]? previous)
        {
            int[]? best = null;
            double bestCost = double.MaxValue;
            for (int lowest = center - 12; lowest <= center; lowest++)
            {
                int index = IndexOf(pitchClasses, Mod(lowest, 12));
                if (index < 0) continue;
                var voicing = new int[pitchClasses.Count];
                voicing[0] = lowest;
                for (int k = 1; k < voicing.Length; k++)
                {
                    int wanted = pitchClasses[(index + k) % pitchClasses.Count], p = voicing[k - 1] + 1;
                    while (Mod(p, 12) != wanted) p++;
                    voicing[k] = p;
                }
                double cost = 0.5 * Math.Abs(voicing.Average() - center);
                if (previous is not null && previous.Length == voicing.Length)
                    for (int k = 0; k < voicing.Length; k++) cost += Math.Abs(voicing[k] - previous[k]);
                if (cost < bestCost) (best, bestCost) = (voicing, cost);
            }
            return best!;
        }

        private static int IndexOf(IReadOnlyList<int> list, int value)
        {
            for (int i = 0; i < list.Count; i++) if (list[i] == value) return i;
            return -1;
        }

        private int BassRoot(Chord chord, int low = 31) => low + Mod(chord.Root - low, 12);

        private List<Note> Chords(Instrument instrument)
        {
            var notes = new List<Note>();
            var (low, high) = GeneralMidi.Range(instrument.Program);
            int center = Math.Clamp(60 + _mood.RegisterShift / 2, low + 8, high - 10);
            int velocity = Velocity(0.78);
            int[]? previous = null;
            for (int bar = 0; bar < _bars; bar++)
            {
                var chord = ChordAt(bar);
                var tones = chord.PitchClasses.ToArray();
                switch (_a.Genre)
                {
                    case Genre.Jazz:
                        // Rootless voicings (the bass has the root), comped in syncopated swung hits.
                        previous = Voice(tones.Length > 3 ? tones[1..] : tones, center, previous);
                        Hits(notes, bar, previous, Pick(_driving ? JazzBusyComping : JazzComping), velocity - 8);
                        break;
                    case Genre.Rock when instrument.Program is 29 or 30:
                        int root = BassRoot(chord, 40);
                        int[] power = [root, root + 7, root + 12];
                        Hits(notes, bar, power, _driving ? EighthChugs : Pick(RockHeld), velocity + 4, articulation: _driving ? 0.6 : 0.95);
                        break;
                    case Genre.Rock:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, _driving ? Strum44 : Pick(RockHeld), velocity);
                        break;
                    case Genre.Classical when instrument.Program == 48:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, _driving ? Repeat(2) : Repeat(_stepsPerBar), velocity - 6, articulation: _driving ? 0.7 : 1.0);
                        break;
                    case Genre.Classical when instrument.Program == 46:
                        Arpeggio(notes, bar, Voice(tones, center - 6, null), ascending: true, velocity - 6);
                        break;
                    case Genre.Classical:
                        previous = Voice(tones, center - 5, previous);
                        if (_a.BeatsPerBar == 3) Hits(notes, bar, previous, [(4, 3), (8, 3)], velocity - 10); // waltz: the "pah pah"
                        else Alberti(notes, bar, previous, velocity - 10);
                        break;
                    case Genre.Electronic when instrument.Program == 90 && _driving:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, [(2, 1), (6, 1), (10, 1), (14, 1)], velocity + 6, articulation: 0.8);
                        break;
                    case Genre.Electronic:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, [(0, _stepsPerBar)], velocity - 4, articulation: 0.98);
                        break;
                    case Genre.Folk:
                        var guitar = GuitarVoicing(chord, center, ref previous);
                        if (_driving || _a.Mood == Mood.Tense) Strum(notes, bar, guitar, velocity);
                        else Arpeggio(notes, bar, guitar, ascending: false, velocity - 6);
                        break;
                    case Genre.Ambient:
                        // Wide pad: root, fifth, ninth and tenth (plus the seventh), held through the bar.
                        int padRoot = center - 12 + Mod(chord.Root - (center - 12), 12);
                        var pad = new List<int> { padRoot, padRoot + 7, padRoot + 14, padRoot + 12 + chord.Intervals[1] };
                        if (chord.Intervals.Length > 3) pad.Add(padRoot + chord.Intervals[3]);
                        Hits(notes, bar, [.. pad], [(0, _stepsPerBar)], velocity - 12, articulation: 1.0);
                        break;
                    case Genre.HipHop when instrument.Program == 48 || !_driving:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, [(0, _stepsPerBar)], velocity - 6, articulation: 0.95);
                        break;
                    case Genre.HipHop:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, Pick(HipHopChops), velocity);
                        break;
                    case Genre.Latin when instrument.Program == 21:
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, [(2, 1), (6, 1), (10, 1), (14, 1)], velocity, articulation: 0.8);
                        break;
                    default: // Latin piano or guitar montuno: syncopated, alternating 2-bar figure
                        previous = Voice(tones, center, previous);
                        Hits(notes, bar, previous, bar % 2 == 0 ? [(0, 2), (4, 2), (6, 2), (10, 2), (14, 2)] : [(2, 2), (6, 2), (8, 2), (12, 2)],
                            velocity, articulation: 0.7);
                        break;
                }
            }
            return notes;
        }

        private static readonly (int Step, int Length)[][] JazzComping = [[(0, 3), (6, 2)], [(2, 2), (10, 3)], [(0, 6), (14, 2)], [(6, 4)]];
        private static readonly (int Step, int Length)[][] JazzBusyComping = [[(0, 3), (6, 2), (10, 2)], [(2, 2), (6, 2), (14, 2)], [(0, 2), (6, 3), (12, 2), (14, 2)]];
        private static readonly (int Step, int Length)[][] RockHeld = [[(0, 16)], [(0, 8), (8, 8)], [(0, 6), (6, 10)]];
        private static readonly (int Step, int Length)[][] HipHopChops = [[(0, 6), (6, 4)], [(0, 3), (3, 3), (10, 6)], [(0, 4), (10, 4)]];
        private static readonly (int Step, int Length)[] EighthChugs = [(0, 2), (2, 2), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2), (14, 2)];
        private static readonly (int Step, int Length)[] Strum44 = [(0, 4), (4, 2), (6, 4), (10, 2), (12, 2), (14, 2)];

        private T Pick<T>(T[] options) => options[_rng.Next(options.Length)];

        /// <summary>Evenly repeated hits of the given length filling the bar.</summary>
        private (int Step, int Length)[] Repeat(int length) => Enumerable.Range(0, _stepsPerBar / length).Select(i => (i * length, length)).ToArray();

        /// <summary>Block chords at the given (step, length) hits; patterns written for 4/4 are cut to the bar.</summary>
        private void Hits(List<Note> notes, int bar, int[] voicing, (int Step, int Length)[] hits, int velocity, double? articulation = null)
        {
            double sounding = articulation ?? _mood.Articulation;
            foreach (var (step, length) in hits)
            {
                if (step >= _stepsPerBar) continue;
                int span = Math.Min(length, _stepsPerBar - step);
                int accent = step == 0 ? 6 : 0;
                foreach (int pitch in voicing)
                    Add(notes, Tick(bar, step), (int)(span * Step * sounding), pitch, velocity + accent, 6);
            }
        }

        /// <summary>Alberti bass in 8ths: low, high, middle, high.</summary>
        private void Alberti(List<Note> notes, int bar, int[] voicing, int velocity)
        {
            int[] order = [0, voicing.Length - 1, 1, voicing.Length - 1];
            for (int i = 0; i < _stepsPerBar / 2; i++)
                Add(notes, Tick(bar, 2 * i), (int)(2 * Step * Math.Max(0.8, _mood.Articulation)), voicing[order[i % 4]], velocity + (i % 4 == 0 ? 6 : 0), 6);
        }

        /// <summary>Broken chord in 8ths through the voicing and its upper octave (harp), or fingerpicked with the bass note first.</summary>
        private void Arpeggio(List<Note> notes, int bar, int[] voicing, bool ascending, int velocity)
        {
            var sequence = ascending
                ? voicing.Concat(voicing.Select(p => p + 12)).ToArray()
                : [voicing[0], voicing[^1], voicing[2], voicing[^2], voicing[1], voicing[^1], voicing[2], voicing[^2]];
            for (int i = 0; i < _stepsPerBar / 2; i++)
                Add(notes, Tick(bar, 2 * i), 4 * Step, sequence[i % sequence.Length], velocity + (i == 0 ? 8 : 0), 6);
        }

        /// <summary>Guitar-like voicing: the root low, then a close voicing above it; five or more strings.</summary>
        private int[] GuitarVoicing(Chord chord, int center, ref int[]? previous)
        {
            previous = Voice(chord.PitchClasses.ToArray(), center + 2, previous);
            int root = BassRoot(chord, 40);
            return [root, root + 7, .. previous.Select(p => p <= root + 7 ? p + 12 : p).Distinct().Order()];
        }

        /// <summary>Strummed down-down-up-up-down-up (4/4) or three downstrokes (3/4), strings spread over a few ms.</summary>
        private void Strum(List<Note> notes, int bar, int[] voicing, int velocity)
        {
            (int Step, bool Down)[] pattern = _a.BeatsPerBar == 3
                ? [(0, true), (4, true), (8, true)]
                : [(0, true), (4, true), (6, false), (10, false), (12, true), (14, false)];
            for (int i = 0; i < pattern.Length; i++)
            {
                var (step, down) = pattern[i];
                int next = i + 1 < pattern.Length ? pattern[i + 1].Step : _stepsPerBar;
                var strings = down ? voicing : voicing.Skip(voicing.Length - 3).Reverse().ToArray();
                for (int k = 0; k < strings.Length; k++)
                    Add(notes, Tick(bar, step) + 12 * k, (int)((next - step) * Step * 0.95), strings[k], velocity + (down ? 4 : -8), 4);
            }
        }

        // ---- bass --------------------------------------------------------------------------------------------

        private List<Note> Bass(Instrument instrument)
        {
            var notes = new List<Note>();
            int velocity = Velocity(0.9) + 6;
            bool pianoSolo = instrument.Program == 0;
            for (int bar = 0; bar < _bars; bar++)
            {
                var chord = ChordAt(bar);
                var nextChord = ChordAt(bar + 1);
                int root = BassRoot(chord), fifth = root + 7;
                if (pianoSolo) root += 12; // the left hand of a piano sits higher than a bass instrument
                switch (_a.Genre)
                {
                    case Genre.Jazz when _a.TempoBpm >= 90 || _driving:
                        WalkingBar(notes, bar, chord, nextChord, velocity);
                        break;
                    case Genre.Jazz:
                        BassHits(notes, bar, [(0, 8, root), (8, 8, fifth)], velocity); // ballad "two feel"
                        break;
                    case Genre.Rock when _driving:
                        BassHits(notes, bar, Enumerable.Range(0, 8).Select(i => (2 * i, 2, i == 7 ? fifth : root)).ToArray(), velocity, 0.8);
                        break;
                    case Genre.Rock:
                        BassHits(notes, bar, [(0, 4, root), (4, 4, root), (8, 4, fifth), (12, 4, root)], velocity);
                        break;
                    case Genre.Classical or Genre.Folk when _a.BeatsPerBar == 3:
                        BassHits(notes, bar, [(0, 4, root)], velocity);
                        break;
                    case Genre.Classical:
                        BassHits(notes, bar, [(0, 8, root), (8, 8, bar % 2 == 0 ? fifth : root)], velocity - 6, 1.0);
                        break;
                    case Genre.Electronic when _driving:
                        BassHits(notes, bar, [(0, 2, root), (2, 2, root + 12), (6, 2, root + 12), (8, 2, root), (10, 2, root + 12), (14, 2, root + 12)], velocity, 0.7);
                        break;
                    case Genre.Electronic:
                        BassHits(notes, bar, [(2, 2, root), (6, 2, root), (10, 2, root), (14, 2, root)], velocity, 0.8); // off-beat house bass
                        break;
                    case Genre.Folk:
                        BassHits(notes, bar, [(0, 8, root), (8, 8, fifth)], velocity);
                        break;
                    case Genre.Ambient:
                        BassHits(notes, bar, [(0, _stepsPerBar, root)], velocity - 14, 1.0);
                        break;
                    case Genre.HipHop:
                        BassHits(notes, bar, [(0, 6, root), (7, 2, root + 12), (10, 5, fifth)], velocity, 0.9);
                        break;
                    default: // Latin tumbao: the fifth on the "and" of 2, the next chord's root anticipated on 4
                        if (bar == 0) BassHits(notes, bar, [(0, 6, root)], velocity);
                        BassHits(notes, bar, [(6, 6, fifth), (12, 10, BassRoot(nextChord))], velocity, 0.9);
                        break;
                }
            }
            return notes;
        }

        private void BassHits(List<Note> notes, int bar, (int Step, int Length, int Pitch)[] hits, int velocity, double? articulation = null)
        {
            double sounding = articulation ?? Math.Max(0.75, _mood.Articulation);
            foreach (var (step, length, pitch) in hits)
                if (step < _stepsPerBar)
                    Add(notes, Tick(bar, step), (int)(length * Step * sounding), pitch, velocity + (step == 0 ? 6 : 0), 4);
        }

        /// <summary>Walking bass in quarters: root, chord or scale tones, then a chromatic approach to the next root.</summary>
        private void WalkingBar(List<Note> notes, int bar, Chord chord, Chord next, int velocity)
        {
            int root = BassRoot(chord), target = BassRoot(next);
            var tones = chord.Intervals.Select(i => root + i).ToList();
            int current = root;
            for (int beat = 0; beat < _a.BeatsPerBar; beat++)
            {
                int pitch = beat == 0 ? root
                    : beat == _a.BeatsPerBar - 1 ? target + (_rng.Next(2) == 0 ? -1 : 1)
                    : tones[Math.Min(tones.Count - 1, beat + _rng.Next(0, 2))];
                if (beat > 0 && beat < _a.BeatsPerBar - 1 && pitch == current) pitch = Math.Min(55, pitch + 12);
                Add(notes, Tick(bar, 4 * beat), (int)(4 * Step * 0.9), pitch, velocity + (beat == 0 ? 6 : 0), 4);
                current = pitch;
            }
        }

        // ---- drums -------------------------------------------------------------------------------------------

        /// <summary>One drum voice's pattern over a bar: 'X' accent, 'x' normal, 'o' ghost, '.' rest, one character per 16th.</summary>
        private void Pattern(List<Note> notes, int bar, int drum, string pattern, int velocity)
        {
            for (int step = 0; step < Math.Min(pattern.Length, _stepsPerBar); step++)
            {
                double scale = pattern[step] switch { 'X' => 1.15, 'x' => 0.9, 'o' => 0.45, _ => 0 };
                if (scale > 0) Add(notes, Tick(bar, step), Step, drum, (int)(velocity * scale), 3);
            }
        }

        private List<Note> Drums()
        {
            var notes = new List<Note>();
            int v = Math.Clamp(Velocity(0.85) + 12, 30, 118);
            bool sparse = _a.Mood is Mood.Sad or Mood.Calm or Mood.Dreamy;
            string kick = "";
            for (int bar = 0; bar < _bars; bar++)
            {
                bool phraseEnd = bar % 4 == 3, phraseStart = bar % 4 == 0;
                switch (_a.Genre)
                {
                    case Genre.Rock:
                        if (bar % 2 == 0) kick = Pick(["x.......x.x.....", "x.....x.x.......", "x.......x......."]);
                        Pattern(notes, bar, GeneralMidi.Kick, kick, v);
                        Pattern(notes, bar, GeneralMidi.Snare, phraseEnd ? "....X.......XxXx" : "....X.......X...", v);
                        Pattern(notes, bar, GeneralMidi.ClosedHat,
                            _a.Mood == Mood.Energetic ? "Xoxoxoxoxoxoxoxo" : sparse ? "x...x...x...x..." : "x.x.x.x.x.x.x.x.", v - 10);
                        if (phraseStart && !sparse) Pattern(notes, bar, GeneralMidi.Crash, "x", v);
                        break;
                    case Genre.Electronic:
                        Pattern(notes, bar, GeneralMidi.Kick, "X...X...X...X...", v);
                        Pattern(notes, bar, sparse ? GeneralMidi.SideStick : GeneralMidi.Clap, "....x.......x...", v);
                        Pattern(notes, bar, GeneralMidi.OpenHat, "..x...x...x...x.", v - 15);
                        if (_driving) Pattern(notes, bar, GeneralMidi.ClosedHat, "xoooxoooxoooxooo", v - 10);
                        if (phraseStart && _driving) Pattern(notes, bar, GeneralMidi.Crash, "x", v);
                        break;
                    case Genre.HipHop:
                        if (bar % 2 == 0) kick = Pick(["X......x..x.....", "X.........X..x..", "X......X.X......"]);
                        Pattern(notes, bar, GeneralMidi.Kick, kick, v);
                        Pattern(notes, bar, GeneralMidi.Snare, "....X.......X...", v);
                        Pattern(notes, bar, GeneralMidi.ClosedHat, _driving ? "x.xox.x.x.xox.x." : "x.x.x.x.x.x.x.x.", v - 15);
                        break;
                    case Genre.Jazz:
                        Pattern(notes, bar, GeneralMidi.Ride, "x...X.x.x...X.x.", v - 5);
                        Pattern(notes, bar, GeneralMidi.PedalHat, "....x.......x...", v - 15);
                        if (_driving) Pattern(notes, bar, GeneralMidi.Kick, "o...o...o...o...", v - 20);
                        string snare = new(Enumerable.Range(0, 16).Select(s => s % 4 == 2 && _rng.NextDouble() < (_driving ? 0.4 : 0.2) ? 'o' : '.').ToArray());
                        Pattern(notes, bar, GeneralMidi.Snare, snare, v);
                        break;
                    case Genre.Latin:
                        Pattern(notes, bar, GeneralMidi.Claves, bar % 2 == 0 ? "x.....x.....x..." : "....x...x.......", v); // son clave 3-2
                        Pattern(notes, bar, GeneralMidi.MuteHighConga, "o.o.X.o.o.o.....", v - 5);
                        Pattern(notes, bar, GeneralMidi.OpenHighConga, "............x.x.", v);
                        Pattern(notes, bar, GeneralMidi.Maracas, _driving ? "xoxoxoxoxoxoxoxo" : "x.x.x.x.x.x.x.x.", v - 25);
                        Pattern(notes, bar, GeneralMidi.Kick, "......x.....x...", v - 15);
                        if (_driving) Pattern(notes, bar, GeneralMidi.Cowbell, "X...x...X...x...", v - 15);
                        break;
                    case Genre.Folk:
                        Pattern(notes, bar, GeneralMidi.Kick, _a.BeatsPerBar == 3 ? "x..........." : "x.......x.......", v - 10);
                        Pattern(notes, bar, GeneralMidi.Tambourine,
                            _a.BeatsPerBar == 3 ? "....x...x..." : _driving ? "..x.X.x...x.X.x." : "....x.......x...", v - 10);
                        break;
                    default: // Ambient: a soft shaker and a triangle every other bar
                        Pattern(notes, bar, GeneralMidi.Cabasa, "..o...o...o...o.", v - 10);
                        if (bar % 2 == 0) Pattern(notes, bar, GeneralMidi.OpenTriangle, "o", v);
                        break;
                }
            }
            return notes;
        }
    }
}
