using System.Buffers.Binary;

namespace MeLFusion.Native.Tests.Training.Data;

/// <summary>The sample encodings a WAV file can carry, as the tests write them.</summary>
public enum WavEncoding
{
    Pcm16,
    Pcm24,
    Pcm32,
    Float32,
}

/// <summary>
/// Writes WAV files in every encoding the reader supports, independently of WavFile's own writer: classic or
/// WAVE_FORMAT_EXTENSIBLE headers, any rate and channel count, and a padded odd-sized chunk before the data.
/// </summary>
internal static class TestWav
{
    private static readonly byte[] GuidSuffix = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    public static int Bits(WavEncoding encoding) => encoding switch
    {
        WavEncoding.Pcm16 => 16,
        WavEncoding.Pcm24 => 24,
        _ => 32,
    };

    /// <summary>The value a sample decodes to after quantisation: what an exact reader must return.</summary>
    public static float Quantised(float value, WavEncoding encoding) => encoding switch
    {
        WavEncoding.Pcm16 => Quantise(value, 15) / 32768f,
        WavEncoding.Pcm24 => Quantise(value, 23) / 8388608f,
        WavEncoding.Pcm32 => Quantise(value, 31) / 2147483648f,
        _ => value,
    };

    private static long Quantise(float value, int bits) =>
        Math.Clamp((long)Math.Round(value * Math.Pow(2, bits)), -(1L << bits), (1L << bits) - 1);

    public static byte[] Encode(int sampleRate, float[][] channels, WavEncoding encoding, bool extensible)
    {
        int bytesPerSample = Bits(encoding) / 8, blockAlign = bytesPerSample * channels.Length, frames = channels[0].Length;
        var file = new List<byte>();
        void U16(int v) => file.AddRange(BitConverter.GetBytes((ushort)v));
        void U32(long v) => file.AddRange(BitConverter.GetBytes((uint)v));
        void Id(string id) => file.AddRange(System.Text.Encoding.ASCII.GetBytes(id));

        Id("RIFF");
        U32(0); // patched below
        Id("WAVE");
        Id("fmt ");
        U32(extensible ? 40 : 16);
        int code = encoding == WavEncoding.Float32 ? 3 : 1;
        U16(extensible ? 0xFFFE : code);
        U16(channels.Length);
        U32(sampleRate);
        U32((long)sampleRate * blockAlign);
        U16(blockAlign);
        U16(Bits(encoding));
        if (extensible)
        {
            U16(22);
            U16(Bits(encoding)); // valid bits
            U32(0); // channel mask: unspecified
            U32(code);
            file.AddRange(GuidSuffix);
        }
        // A LIST chunk of odd size, padded to even, that the reader must step over.
        Id("LIST");
        U32(5);
        Id("INFOx");
        file.Add(0);
        Id("data");
        U32((long)frames * blockAlign);
        var sample = new byte[4];
        for (int f = 0; f < frames; f++)
            foreach (var channel in channels)
            {
                float v = channel[f];
                switch (encoding)
                {
                    case WavEncoding.Pcm16: BinaryPrimitives.WriteInt16LittleEndian(sample, (short)Quantise(v, 15)); break;
                    case WavEncoding.Pcm24:
                    case WavEncoding.Pcm32: BinaryPrimitives.WriteInt32LittleEndian(sample, (int)Quantise(v, Bits(encoding) - 1)); break; // 24-bit: the low 3 bytes
                    default: BinaryPrimitives.WriteSingleLittleEndian(sample, v); break;
                }
                file.AddRange(sample.AsSpan(0, bytesPerSample).ToArray());
            }
        var bytes = file.ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), (uint)(bytes.Length - 8));
        return bytes;
    }

    public static void Write(string path, int sampleRate, WavEncoding encoding, params float[][] channels) =>
        File.WriteAllBytes(path, Encode(sampleRate, channels, encoding, extensible: false));
}
