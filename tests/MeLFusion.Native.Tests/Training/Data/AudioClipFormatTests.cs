using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Training.Data;

public sealed class AudioClipFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-audio-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static float[] Noise(int length, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 1.8 - 0.9)).ToArray();
    }

    public static TheoryData<WavEncoding, bool, int, int> Encodings()
    {
        var data = new TheoryData<WavEncoding, bool, int, int>();
        foreach (var encoding in Enum.GetValues<WavEncoding>())
        {
            data.Add(encoding, false, 44100, 2);
            data.Add(encoding, true, 22050, 3);
        }
        data.Add(WavEncoding.Pcm16, false, 8000, 1);
        data.Add(WavEncoding.Float32, true, 96000, 6);
        return data;
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void EveryEncodingRateAndChannelCountDecodesToTheWrittenSamples(WavEncoding encoding, bool extensible, int rate, int channelCount)
    {
        var channels = Enumerable.Range(0, channelCount).Select(c => Noise(97, c)).ToArray();
        string path = Path.Combine(_dir, $"{encoding}.wav");
        File.WriteAllBytes(path, TestWav.Encode(rate, channels, encoding, extensible));

        var clip = WavFile.Read(path);
        Assert.Equal(rate, clip.SampleRate);
        Assert.Equal(channelCount, clip.Channels.Length);
        for (int c = 0; c < channelCount; c++)
            Check.Close(channels[c].Select(v => TestWav.Quantised(v, encoding)).ToArray(), clip.Channels[c], 0, 0, $"channel {c}");
    }

    [Fact]
    public void ExtensibleFilesWithAnUnknownSubFormatOrAShortHeaderAreRejectedByName()
    {
        var good = TestWav.Encode(16000, [new float[4]], WavEncoding.Pcm16, extensible: true);
        var otherGuid = (byte[])good.Clone();
        otherGuid[20 + 24 + 4] = 0x7F; // byte 4 of the sub-format GUID (fmt body starts at 20)
        var e = Assert.Throws<WavException>(() => WavFile.Decode(otherGuid, "ambisonic.wav"));
        Assert.Contains("ambisonic.wav", e.Message);
        Assert.Contains("sub-format", e.Message);

        var shortHeader = (byte[])good.Clone();
        BitConverter.GetBytes(30u).CopyTo(shortHeader, 16); // fmt size 30 (its chunk still parses, the GUID is cut)
        e = Assert.Throws<WavException>(() => WavFile.Decode(shortHeader, "short.wav"));
        Assert.Contains("short.wav", e.Message);
        Assert.Contains("too short", e.Message);
    }

    private static readonly AudioClipFormat Small = new(16000, 1600, 0.5f);

    [Fact]
    public void StereoIsMixedToMonoBeforeCentringAndNormalising()
    {
        var left = Noise(1600, 1);
        var right = Noise(1600, 2).Select(v => v + 0.25f).ToArray();
        var clip = Small.Prepare(new AudioClip(16000, [left, right]), "stereo");

        var mono = left.Zip(right, (a, b) => (a + (double)b) / 2).ToArray();
        double mean = mono.Average();
        double peak = mono.Max(v => Math.Abs(v - mean));
        Check.Close(mono.Select(v => (float)((v - mean) / peak * 0.5)).ToArray(), clip, 2e-7f, 0, "mono");
    }

    [Fact]
    public void ShortClipsArePaddedWithZerosAtTheEndAndLongOnesCroppedToTheirStart()
    {
        var shortClip = Small.Prepare(new AudioClip(16000, [Noise(1000, 3)]), "short");
        Assert.Equal(1600, shortClip.Length);
        Assert.All(shortClip[1000..], v => Assert.Equal(0f, v));
        Assert.Contains(shortClip[..1000], v => v != 0);

        // A ramp longer than the clip: the output keeps its first 1600 samples (centred on the whole ramp's mean).
        var ramp = Enumerable.Range(0, 4000).Select(i => i / 4000f).ToArray();
        var cropped = Small.Prepare(new AudioClip(16000, [ramp]), "long");
        Assert.Equal(1600, cropped.Length);
        double mean = ramp.Average(v => (double)v);
        double peak = Math.Abs(ramp[0] - mean);
        Check.Close(ramp[..1600].Select(v => (float)((v - mean) / peak * 0.5)).ToArray(), cropped, 2e-7f, 0, "cropped ramp");
    }

    /// <summary>
    /// Spec §1.8 order: the mean of the whole resampled waveform is removed before the crop, and the crop is then
    /// scaled to peak 0.5. A first half of tone and a second half of DC offset tell that apart from centring the crop.
    /// </summary>
    [Fact]
    public void TheMeanIsTakenOverTheWholeWaveformAndThePeakOverTheCrop()
    {
        var signal = Enumerable.Range(0, 3200).Select(i => i < 1600 ? (float)Math.Sin(i * 0.05) : 1f).ToArray();
        var clip = Small.Prepare(new AudioClip(16000, [signal]), "offset");
        double mean = signal.Average(v => (double)v);
        var centred = signal[..1600].Select(v => v - mean).ToArray();
        double peak = centred.Max(Math.Abs);
        Check.Close(centred.Select(v => (float)(v / peak * 0.5)).ToArray(), clip, 2e-7f, 0, "clip");
        Assert.Equal(0.5f, clip.Max(MathF.Abs));
    }

    [Fact]
    public void OtherRatesAreResampledToSixteenKilohertzKeepingPitch()
    {
        // 0.2 s of a 1 kHz tone at 44.1 kHz fills the first 3200 samples of a 0.25 s clip.
        var format = new AudioClipFormat(16000, 4000, 0.5f);
        var tone = Enumerable.Range(0, 8820).Select(i => (float)(0.3 * Math.Sin(2 * Math.PI * 1000 * i / 44100))).ToArray();
        var clip = format.Prepare(new AudioClip(44100, [tone, tone]), "tone");
        for (int i = 50; i < 3150; i++)
            Assert.Equal(0.5 * Math.Sin(2 * Math.PI * 1000 * i / 16000), clip[i], 0.003);
        Assert.All(clip[3201..], v => Assert.Equal(0f, v));
    }

    [Fact]
    public void SilenceStaysZeroAndAnEmptyFileIsAnErrorNamingIt()
    {
        Assert.All(Small.Prepare(new AudioClip(16000, [new float[500]]), "quiet"), v => Assert.Equal(0f, v));

        string path = Path.Combine(_dir, "empty.wav");
        TestWav.Write(path, 16000, WavEncoding.Pcm16, [new float[0]]);
        var e = Assert.Throws<WavException>(() => Small.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("no samples", e.Message);
    }

    [Fact]
    public void TheSpecFormatIsTenPointTwoFourSecondsAtSixteenKilohertzPeakHalf()
    {
        Assert.Equal((16000, 163840, 0.5f), (AudioClipFormat.MeLFusion.SampleRate, AudioClipFormat.MeLFusion.Samples, AudioClipFormat.MeLFusion.Peak));
        Assert.Equal(10.24, AudioClipFormat.MeLFusion.Seconds, 12);
        Assert.Throws<ArgumentException>(() => new AudioClipFormat(16000, 0, 0.5f).Validate());
    }
}
