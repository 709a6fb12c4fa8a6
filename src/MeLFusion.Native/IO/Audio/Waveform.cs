namespace MeLFusion.Native.IO.Audio;

/// <summary>The small mono-waveform steps that clip preparation is built from (dataset synthesis and training).</summary>
public static class Waveform
{
    /// <summary>The first <paramref name="length"/> samples, zero-padded at the end when the input is shorter.</summary>
    public static float[] PadOrCrop(ReadOnlySpan<float> samples, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var result = new float[length];
        samples[..Math.Min(samples.Length, length)].CopyTo(result);
        return result;
    }

    /// <summary>Subtracts the mean (accumulated in f64) from every sample.</summary>
    public static void RemoveMean(Span<float> samples)
    {
        if (samples.IsEmpty) return;
        double sum = 0;
        foreach (float s in samples) sum += s;
        double mean = sum / samples.Length;
        for (int i = 0; i < samples.Length; i++) samples[i] = (float)(samples[i] - mean);
    }

    /// <summary>max |x|; NaN samples are ignored.</summary>
    public static float Peak(ReadOnlySpan<float> samples)
    {
        float peak = 0;
        foreach (float s in samples)
            if (MathF.Abs(s) > peak) peak = MathF.Abs(s);
        return peak;
    }

    /// <summary>
    /// x / max|x| · <paramref name="peak"/> (in that order, as the reference does, so the loudest sample lands exactly on
    /// ±peak); an all-zero waveform stays zero. Returns the old peak.
    /// </summary>
    public static float NormalizePeak(Span<float> samples, float peak)
    {
        float old = Peak(samples);
        if (old == 0) return 0;
        for (int i = 0; i < samples.Length; i++) samples[i] = samples[i] / old * peak;
        return old;
    }
}
