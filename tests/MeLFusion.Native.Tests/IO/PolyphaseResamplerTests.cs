using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.IO;

public sealed class PolyphaseResamplerTests
{
    public static TheoryData<string> Cases()
    {
        using var fixture = Fixture.Open("resample");
        var data = new TheoryData<string>();
        foreach (string name in fixture.Cases) data.Add(name);
        return data;
    }

    /// <summary>
    /// Against scipy.signal.resample_poly (tools/reference/resample.py): both sum the same f64 taps, so outputs of
    /// magnitude below 2 agree to within one f32 rounding step (2.4e-7) of each other; 3e-7 absolute is the bound.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesScipyResamplePoly(string name)
    {
        using var fixture = Fixture.Open("resample");
        var input = fixture.F32(name + ".input");
        var expected = fixture.F32(name + ".output");
        var actual = PolyphaseResampler.Resample(input, fixture.MetaInt(name + ".from"), fixture.MetaInt(name + ".to"));
        Assert.Equal(expected.Length, actual.Length);
        Check.Close(expected, actual, 3e-7f, 0, name);
    }

    [Theory]
    [InlineData(44100, 16000, 160, 441)]
    [InlineData(48000, 16000, 1, 3)]
    [InlineData(8000, 16000, 2, 1)]
    [InlineData(22050, 16000, 320, 441)]
    public void ReducesTheRatioByTheGcd(int from, int to, int up, int down)
    {
        var resampler = PolyphaseResampler.For(from, to);
        Assert.Equal((up, down), (resampler.Up, resampler.Down));
        Assert.Same(resampler, PolyphaseResampler.For(from, to));
    }

    [Fact]
    public void KeepsATonesPitchAndLevelAndRemovesWhatTheNewRateCannotHold()
    {
        const int from = 44100, to = 16000;
        var tone = Enumerable.Range(0, from / 2).Select(i => (float)(0.8 * Math.Sin(2 * Math.PI * 1000 * i / from))).ToArray();
        var resampled = PolyphaseResampler.Resample(tone, from, to);
        Assert.Equal(to / 2, resampled.Length);
        for (int i = 64; i < resampled.Length - 64; i++) // away from the edges, where the filter runs out of input
            Assert.Equal(0.8 * Math.Sin(2 * Math.PI * 1000 * i / to), resampled[i], 0.002);

        // Tones above the new Nyquist frequency (8 kHz) are filtered out rather than aliased: scipy's filter (whose
        // transition band is centred on the cutoff) lets 3% of 9 kHz and 0.14% of 10 kHz through.
        foreach (var (frequency, leak) in new[] { (9000, 0.035f), (10000, 0.002f) })
        {
            var high = Enumerable.Range(0, from / 2).Select(i => (float)Math.Sin(2 * Math.PI * frequency * i / from)).ToArray();
            var filtered = PolyphaseResampler.Resample(high, from, to);
            Assert.True(filtered.Skip(64).SkipLast(64).Max(MathF.Abs) < leak, $"{frequency} Hz leaked through");
        }
    }

    [Fact]
    public void EqualRatesCopyAndEmptyInputGivesEmptyOutput()
    {
        float[] input = [0.1f, -0.2f, 0.3f];
        var copy = PolyphaseResampler.Resample(input, 16000, 16000);
        Assert.Equal(input, copy);
        Assert.NotSame(input, copy);
        Assert.Empty(PolyphaseResampler.Resample([], 44100, 16000));
    }

    [Fact]
    public void RatiosTooFineForAFilterInMemoryAreRejectedWithBothRates()
    {
        var e = Assert.Throws<ArgumentException>(() => PolyphaseResampler.For(999_983, 16000));
        Assert.Contains("999983 Hz", e.Message);
        Assert.Contains("16000 Hz", e.Message);
    }
}
