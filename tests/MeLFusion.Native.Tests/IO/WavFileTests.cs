using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.IO;

public sealed class WavFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-wav-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("pcm16_stereo")]
    [InlineData("pcm8_mono")]
    [InlineData("pcm24_mono")]
    [InlineData("float32_stereo")]
    public void ReadsFilesFromIndependentEncoders(string name)
    {
        using var fixture = Fixture.Open("wav");
        var clip = WavFile.Read(Path.Combine(Fixture.Directory, "wav", name + ".wav"));
        var shape = fixture.Shape(name + ".samples");
        var expected = fixture.F32(name + ".samples");
        Assert.Equal(fixture.MetaInt(name + ".rate"), clip.SampleRate);
        Assert.Equal(shape[0], clip.Channels.Length);
        Check.Close(expected, clip.Channels.SelectMany(c => c).ToArray(), 0, 0, name);
    }

    [Fact]
    public void Pcm16RoundTripsWithinHalfAStep()
    {
        string path = Path.Combine(_dir, "out.wav");
        var left = Enumerable.Range(0, 100).Select(i => 0.9f * MathF.Sin(i * 0.3f)).ToArray();
        var right = left.Select(v => -0.5f * v).ToArray();
        WavFile.WritePcm16(path, 16000, left, right);
        var clip = WavFile.Read(path);
        Assert.Equal(16000, clip.SampleRate);
        Check.Close(left, clip.Channels[0], 0.5f / 32768, 0, "left");
        Check.Close(right, clip.Channels[1], 0.5f / 32768, 0, "right");
        Check.Close(left.Zip(right, (a, b) => (a + b) / 2).ToArray(), clip.MixToMono(), 0.5f / 32768, 0, "mono");
    }

    [Fact]
    public void ClipsOutOfRangeSamples()
    {
        string path = Path.Combine(_dir, "clip.wav");
        WavFile.WritePcm16(path, 8000, [2f, -3f, 0.25f, float.NaN]);
        Check.Close([32767f / 32768, -1f, 8192f / 32768, 0f], WavFile.Read(path).Channels[0], 1e-6f, 0, "clipped");
    }

    public static TheoryData<string, byte[], string> BrokenFiles()
    {
        byte[] Header(ushort format, ushort channels, int rate, ushort bits, ushort align, uint dataSize)
        {
            var b = new List<byte>();
            b.AddRange("RIFF"u8.ToArray()); b.AddRange(BitConverter.GetBytes(36u + dataSize)); b.AddRange("WAVEfmt "u8.ToArray());
            b.AddRange(BitConverter.GetBytes(16u)); b.AddRange(BitConverter.GetBytes(format)); b.AddRange(BitConverter.GetBytes(channels));
            b.AddRange(BitConverter.GetBytes(rate)); b.AddRange(BitConverter.GetBytes(rate * align)); b.AddRange(BitConverter.GetBytes(align));
            b.AddRange(BitConverter.GetBytes(bits)); b.AddRange("data"u8.ToArray()); b.AddRange(BitConverter.GetBytes(dataSize));
            return [.. b];
        }
        return new()
        {
            { "empty", [], "not a RIFF/WAVE" },
            { "png", [0x89, (byte)'P', (byte)'N', (byte)'G', 0, 0, 0, 0, 0, 0, 0, 0], "not a RIFF/WAVE" },
            { "adpcm", Header(2, 1, 16000, 4, 1, 0), "format 2" },
            { "zero channels", Header(1, 0, 16000, 16, 0, 0), "0 channels" },
            { "bad align", Header(1, 2, 16000, 16, 3, 0), "block align" },
            { "bad rate", Header(1, 1, 0, 16, 2, 0), "sample rate 0" },
            { "no data", [.. Header(1, 1, 16000, 16, 2, 0)[..36]], "no data chunk" },
            { "huge chunk", [.. "RIFF"u8.ToArray(), 0, 0, 0, 0, .. "WAVEfmt "u8.ToArray(), 0xFF, 0xFF, 0xFF, 0x7F], "past the end" },
        };
    }

    [Theory]
    [MemberData(nameof(BrokenFiles))]
    public void BrokenFilesGiveErrorsNamingTheFile(string label, byte[] bytes, string expected)
    {
        var e = Assert.Throws<WavException>(() => WavFile.Decode(bytes, label + ".wav"));
        Assert.Contains(label + ".wav", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TruncatedDataIsReadUpToTheLastWholeFrame()
    {
        string path = Path.Combine(_dir, "t.wav");
        WavFile.WritePcm16(path, 16000, new float[10], new float[10]);
        var bytes = File.ReadAllBytes(path)[..^3];
        Assert.Equal(9, WavFile.Decode(bytes, "t.wav").Frames);
    }
}
