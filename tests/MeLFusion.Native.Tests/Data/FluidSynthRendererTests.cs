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
}
