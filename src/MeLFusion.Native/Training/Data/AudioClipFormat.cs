using MeLFusion.Native.IO.Audio;

namespace MeLFusion.Native.Training.Data;

/// <summary>
/// The waveform every training example becomes: <see cref="Samples"/> mono samples at <see cref="SampleRate"/>,
/// peak-normalised to <see cref="Peak"/>. <see cref="MeLFusion"/> is the reference's (spec §1.5, §1.8).
/// </summary>
public sealed record AudioClipFormat(int SampleRate, int Samples, float Peak)
{
    public const int SpecSampleRate = 16000;

    /// <summary>1024 mel frames × hop 160: 10.24 s at 16 kHz.</summary>
    public const int SpecSamples = 163840;

    public const float SpecPeak = 0.5f;

    public static AudioClipFormat MeLFusion { get; } = new(SpecSampleRate, SpecSamples, SpecPeak);

    public double Seconds => (double)Samples / SampleRate;

    public void Validate()
    {
        if (SampleRate <= 0 || Samples <= 0 || !(Peak > 0) || float.IsInfinity(Peak))
            throw new ArgumentException($"audio clip format: sample rate {SampleRate}, {Samples} samples and peak {Peak} must all be positive and finite");
    }

    /// <summary>Reads a WAV file (any rate, channel count, PCM or float) and <see cref="Prepare"/>s it.</summary>
    public float[] Load(string path) => Prepare(WavFile.Read(path), path);

    /// <summary>
    /// The reference's <c>read_wav_file</c> (spec §1.8): mono, resampled to <see cref="SampleRate"/>, the mean of the
    /// whole resampled waveform removed, padded with zeros or cropped to <see cref="Samples"/>, then scaled to peak
    /// <see cref="Peak"/>. The reference also scales to peak 0.5 before the crop (x / (max|x| + 1e-8) · 0.5); the
    /// final x / max|x| · 0.5 cancels that positive factor, so it is folded into the last step.
    /// Mono is the channels' average: the spec asks for mono audio, while Tango's code keeps the first channel.
    /// A silent clip stays all zeros (the reference divides 0 by 0 there, and its mel front end turns the NaNs to 0).
    /// </summary>
    /// <exception cref="WavException">The audio has no samples; the message names <paramref name="name"/>.</exception>
    public float[] Prepare(AudioClip audio, string name)
    {
        if (audio.Frames == 0) throw new WavException($"{name}: the audio has no samples");
        var mono = PolyphaseResampler.Resample(audio.MixToMono(), audio.SampleRate, SampleRate);
        Waveform.RemoveMean(mono);
        var clip = Waveform.PadOrCrop(mono, Samples);
        Waveform.NormalizePeak(clip, Peak);
        return clip;
    }
}
