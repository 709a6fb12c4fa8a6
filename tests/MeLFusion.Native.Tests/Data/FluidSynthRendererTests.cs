using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.IO.Audio;

namespace MeLFusion.Native.Tests.Data;

public sealed class FluidSynthRendererTests
{
    [Fact]
    public void ClipsAreMonoZeroMeanPeakHalfAndExactlyTenPointTwoFourSeconds()
    {
        // Stereo, offset, longer than a clip: mixed, cropped, centred, normalised.
        int frames = FluidSynthRenderer.ClipSamples + 5000;
        var left = Enumerable.Range(0, frames).Select(i => 0.3f + 0.2f * MathF.Sin(i * 0.01f)).ToArray();
        var right = Enumerable.Range(0, frames).Select(i => 0.3f - 0.1f * MathF.Sin(i * 0.01f)).ToArray();
        var clip = FluidSynthRenderer.ToClip(new AudioClip(16000, [left, right]), "test");
        Assert.Equal(163840, clip.Length);
        Assert.Equal(0.5f, clip.Max(MathF.Abs), 6);
        Assert.Equal(0, clip.Average(s => (double)s), 6);

        // Shorter than a clip: zero-padded at the end.
        var shortClip = FluidSynthRenderer.ToClip(new AudioClip(16000, [Enumerable.Range(0, 1000).Select(i => MathF.Sin(i * 0.3f)).ToArray()]), "short");
        Assert.Equal(163840, shortClip.Length);
        Assert.Equal(0.5f, shortClip.Max(MathF.Abs), 6);

        var e = Assert.Throws<IOException>(() => FluidSynthRenderer.ToClip(new AudioClip(16000, [new float[2000]]), "quiet.mid"));
        Assert.Contains("quiet.mid", e.Message);
        Assert.Contains("silent", e.Message);
    }

    [Fact]
    public void ResamplingKeepsATonesPitchAndLevel()
    {
        const int from = 44100, to = 16000;
        var tone = Enumerable.Range(0, from / 2).Select(i => 0.8f * MathF.Sin(2 * MathF.PI * 1000 * i / from)).ToArray();
        var resampled = FluidSynthRenderer.Resample(tone, from, to);
        Assert.Equal(to / 2, resampled.Length);
        for (int i = 64; i < resampled.Length - 64; i++) // away from the edges, where the filter runs out of input
            Assert.Equal(0.8 * Math.Sin(2 * Math.PI * 1000 * i / to), resampled[i], 0.01);

        // A tone above the new Nyquist frequency (9 kHz > 8 kHz) is filtered out rather than aliased to 7 kHz.
        var high = Enumerable.Range(0, from / 2).Select(i => MathF.Sin(2 * MathF.PI * 9000 * i / from)).ToArray();
        var filtered = FluidSynthRenderer.Resample(high, from, to);
        Assert.True(filtered.Skip(64).SkipLast(64).Max(MathF.Abs) < 0.05, "9 kHz leaked through");
    }
}
