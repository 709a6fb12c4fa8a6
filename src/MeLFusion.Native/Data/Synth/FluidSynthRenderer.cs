using System.Diagnostics;
using System.Globalization;
using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Data.Synth;

/// <summary>An external tool or data file the synthesizer needs is missing; the message says which Debian package provides it.</summary>
public sealed class SynthToolMissingException(string message) : Exception(message);

/// <summary>
/// Renders MIDI files to audio with the FluidSynth command-line program and a General MIDI soundfont, one process
/// per file (with a timeout), as 32-bit float WAV at <see cref="SampleRate"/>; <see cref="ToClip"/> then makes the
/// dataset clip the reference pipeline expects: mono, 163840 samples, zero mean, peak 0.5.
/// </summary>
public sealed class FluidSynthRenderer
{
    public const string DefaultSoundFont = "/usr/share/sounds/sf2/FluidR3_GM.sf2";
    /// <summary>The training clip format's rate (<see cref="AudioClipFormat.MeLFusion"/>), so no resampling is needed.</summary>
    public const int SampleRate = AudioClipFormat.SpecSampleRate;

    /// <summary>10.24 s at 16 kHz: the 1024 mel frames × hop 160 of spec §1.5.</summary>
    public const int ClipSamples = AudioClipFormat.SpecSamples;

    public const float ClipPeak = AudioClipFormat.SpecPeak;

    private const string InstallHint = "sudo apt-get install fluidsynth fluid-soundfont-gm";

    public string Executable { get; }
    public string SoundFont { get; }

    /// <summary>Longest a single render may take before the process is killed.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>FluidSynth's master gain; low enough that dense arrangements do not clip before normalisation.</summary>
    public double Gain { get; init; } = 0.6;

    private FluidSynthRenderer(string executable, string soundFont)
    {
        Executable = executable;
        SoundFont = soundFont;
    }

    /// <summary>
    /// Finds fluidsynth (on PATH unless given) and the soundfont (the Debian GM soundfont unless given); throws a
    /// <see cref="SynthToolMissingException"/> naming the package to install when either is missing.
    /// </summary>
    public static FluidSynthRenderer Locate(string? executable = null, string? soundFont = null)
    {
        string exe;
        if (executable is not null)
            exe = File.Exists(executable) ? executable : throw new SynthToolMissingException($"fluidsynth executable '{executable}' does not exist");
        else
            exe = FindOnPath("fluidsynth") ?? throw new SynthToolMissingException(
                $"fluidsynth was not found on PATH: install the Debian package 'fluidsynth' ({InstallHint})");
        string sf = soundFont ?? DefaultSoundFont;
        if (!File.Exists(sf))
            throw new SynthToolMissingException(soundFont is null
                ? $"the General MIDI soundfont {DefaultSoundFont} is missing: install the Debian package 'fluid-soundfont-gm' ({InstallHint})"
                : $"soundfont '{soundFont}' does not exist");
        return new FluidSynthRenderer(exe, sf);
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    /// <summary>Renders a MIDI file through a scratch WAV file (deleted afterwards) and returns the audio at <see cref="SampleRate"/>.</summary>
    public AudioClip Render(string midiPath, string scratchWavPath)
    {
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // -n/-i: no MIDI input, no shell; -O float avoids the 16-bit dither, so renders are bit-reproducible.
        foreach (string arg in new[]
                 {
                     "-n", "-i", "-q", "-g", Gain.ToString(CultureInfo.InvariantCulture), "-r", SampleRate.ToString(CultureInfo.InvariantCulture),
                     "-T", "wav", "-O", "float", "-F", scratchWavPath, SoundFont, midiPath,
                 })
            start.ArgumentList.Add(arg);
        try
        {
            using var process = Process.Start(start) ?? throw new IOException($"could not start {Executable}");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                throw new TimeoutException($"fluidsynth did not finish rendering {midiPath} within {Timeout.TotalSeconds:0} s");
            }
            string errors = stderr.Result.Trim();
            _ = stdout.Result;
            if (process.ExitCode != 0)
                throw new IOException($"fluidsynth failed (exit code {process.ExitCode}) rendering {midiPath}: {Tail(errors)}");
            if (!File.Exists(scratchWavPath))
                throw new IOException($"fluidsynth wrote no audio for {midiPath}: {Tail(errors)}");
            var clip = WavFile.Read(scratchWavPath);
            if (clip.Frames == 0) throw new IOException($"fluidsynth rendered no samples for {midiPath}: {Tail(errors)}");
            return clip.SampleRate == SampleRate
                ? clip
                : new AudioClip(SampleRate, clip.Channels.Select(c => PolyphaseResampler.Resample(c, clip.SampleRate, SampleRate)).ToArray());
        }
        finally
        {
            File.Delete(scratchWavPath);
        }
    }

    private static string Tail(string text) => text.Length == 0 ? "no message" : text.Length <= 400 ? text : "..." + text[^400..];

    /// <summary>
    /// The dataset clip: channels averaged to mono, cropped or zero-padded to <see cref="ClipSamples"/>, mean removed,
    /// peak-normalised to <see cref="ClipPeak"/> (spec §1.8). Throws when the render is silent.
    /// </summary>
    public static float[] ToClip(AudioClip audio, string name)
    {
        var clip = Waveform.PadOrCrop(audio.MixToMono(), ClipSamples);
        Waveform.RemoveMean(clip);
        float peak = Waveform.Peak(clip);
        if (peak < 1e-4f) throw new IOException($"{name}: the rendered audio is silent (peak {peak:g3}); is the soundfont complete?");
        Waveform.NormalizePeak(clip, ClipPeak);
        return clip;
    }
}
