using System.Buffers.Binary;

namespace MeLFusion.Native.IO.Audio;

/// <summary>A WAV file is malformed or unsupported; the message names the file and the problem.</summary>
public sealed class WavException(string message) : IOException(message);

/// <summary>Decoded audio: interleaved-free planar samples in [-1, 1], one array per channel.</summary>
public sealed record AudioClip(int SampleRate, float[][] Channels)
{
    public int Frames => Channels.Length == 0 ? 0 : Channels[0].Length;

    /// <summary>The channels averaged to mono.</summary>
    public float[] MixToMono()
    {
        if (Channels.Length == 1) return (float[])Channels[0].Clone();
        var mono = new float[Frames];
        foreach (var channel in Channels)
            for (int i = 0; i < mono.Length; i++) mono[i] += channel[i];
        float scale = 1f / Channels.Length;
        for (int i = 0; i < mono.Length; i++) mono[i] *= scale;
        return mono;
    }
}

/// <summary>
/// RIFF/WAVE reading (PCM 8/16/24/32-bit and IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE included) and 16-bit PCM
/// writing. Every chunk size is checked against the file, so a truncated or hostile file gives a
/// <see cref="WavException"/>, never a crash or an oversized allocation.
/// </summary>
public static class WavFile
{
    private const ushort FormatPcm = 1, FormatFloat = 3, FormatExtensible = 0xFFFE;

    /// <summary>Bytes 4..15 of every KSDATAFORMAT_SUBTYPE GUID that wraps a classic format code.</summary>
    private static ReadOnlySpan<byte> ExtensibleGuidSuffix => [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    public static AudioClip Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new WavException($"{path}: cannot read: {e.Message}"); }
        return Decode(bytes, path);
    }

    public static AudioClip Decode(ReadOnlySpan<byte> file, string name)
    {
        if (file.Length < 12 || !file[..4].SequenceEqual("RIFF"u8) || !file.Slice(8, 4).SequenceEqual("WAVE"u8))
            throw new WavException($"{name}: not a RIFF/WAVE file");
        int pos = 12;
        ushort format = 0, channels = 0, bits = 0, blockAlign = 0;
        int sampleRate = 0;
        bool haveFormat = false;
        while (pos + 8 <= file.Length)
        {
            var id = file.Slice(pos, 4);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(file.Slice(pos + 4, 4));
            int body = pos + 8;
            if (size > (uint)(file.Length - body))
            {
                // Streaming writers leave the data size as 0xFFFFFFFF or too large: take the rest of the file.
                if (id.SequenceEqual("data"u8)) size = (uint)(file.Length - body);
                else throw new WavException($"{name}: chunk '{System.Text.Encoding.ASCII.GetString(id)}' claims {size} bytes past the end of the file");
            }
            if (id.SequenceEqual("fmt "u8))
            {
                if (size < 16) throw new WavException($"{name}: fmt chunk of {size} bytes is too short");
                var fmt = file.Slice(body, (int)size);
                format = BinaryPrimitives.ReadUInt16LittleEndian(fmt);
                channels = BinaryPrimitives.ReadUInt16LittleEndian(fmt[2..]);
                sampleRate = BinaryPrimitives.ReadInt32LittleEndian(fmt[4..]);
                blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(fmt[12..]);
                bits = BinaryPrimitives.ReadUInt16LittleEndian(fmt[14..]);
                if (format == FormatExtensible)
                {
                    if (size < 40) throw new WavException($"{name}: WAVE_FORMAT_EXTENSIBLE fmt chunk of {size} bytes is too short (40 needed)");
                    // The sub-format GUID is {format code}-0000-0010-8000-00AA00389B71 for the plain PCM and float formats.
                    if (!fmt.Slice(28, 12).SequenceEqual(ExtensibleGuidSuffix) || BinaryPrimitives.ReadUInt16LittleEndian(fmt[26..]) != 0)
                        throw new WavException($"{name}: WAVE_FORMAT_EXTENSIBLE sub-format {Convert.ToHexString(fmt.Slice(24, 16))} is not PCM or IEEE float");
                    format = BinaryPrimitives.ReadUInt16LittleEndian(fmt[24..]);
                }
                haveFormat = true;
            }
            else if (id.SequenceEqual("data"u8))
            {
                if (!haveFormat) throw new WavException($"{name}: data chunk before fmt chunk");
                return DecodeSamples(file.Slice(body, (int)size), name, format, channels, sampleRate, bits, blockAlign);
            }
            pos = body + (int)size + (int)(size & 1); // chunks are padded to even sizes
        }
        throw new WavException($"{name}: no data chunk");
    }

    private static AudioClip DecodeSamples(ReadOnlySpan<byte> data, string name, ushort format, ushort channels,
        int sampleRate, ushort bits, ushort blockAlign)
    {
        if (channels is 0 or > 64) throw new WavException($"{name}: {channels} channels is not supported");
        if (sampleRate is <= 0 or > 1_000_000) throw new WavException($"{name}: sample rate {sampleRate} is not supported");
        bool pcm = format == FormatPcm && bits is 8 or 16 or 24 or 32;
        bool ieee = format == FormatFloat && bits is 32 or 64;
        if (!pcm && !ieee) throw new WavException($"{name}: format {format} with {bits} bits per sample is not supported (PCM 8/16/24/32, float 32/64)");
        int bytesPerSample = bits / 8;
        if (blockAlign != bytesPerSample * channels)
            throw new WavException($"{name}: block align {blockAlign} does not match {channels} x {bits}-bit samples");
        int frames = data.Length / blockAlign;
        var result = new float[channels][];
        for (int c = 0; c < channels; c++) result[c] = new float[frames];
        for (int f = 0; f < frames; f++)
        {
            var frame = data.Slice(f * blockAlign, blockAlign);
            for (int c = 0; c < channels; c++)
                result[c][f] = DecodeSample(frame.Slice(c * bytesPerSample, bytesPerSample), ieee);
        }
        return new AudioClip(sampleRate, result);
    }

    private static float DecodeSample(ReadOnlySpan<byte> s, bool ieee) => (s.Length, ieee) switch
    {
        (1, false) => (s[0] - 128) / 128f,
        (2, false) => BinaryPrimitives.ReadInt16LittleEndian(s) / 32768f,
        (3, false) => ((s[0] | (s[1] << 8) | (s[2] << 16)) << 8 >> 8) / 8388608f,
        (4, false) => BinaryPrimitives.ReadInt32LittleEndian(s) / 2147483648f,
        (4, true) => BinaryPrimitives.ReadSingleLittleEndian(s),
        _ => (float)BinaryPrimitives.ReadDoubleLittleEndian(s),
    };

    /// <summary>
    /// Writes mono or multi-channel 16-bit PCM: samples scaled by 32768 (as the reference pipeline does), rounded, clipped
    /// to the int16 range; NaN becomes 0. Written to a
    /// temporary file and renamed, so an existing file is never left half-written.
    /// </summary>
    public static void WritePcm16(string path, int sampleRate, params float[][] channels)
    {
        if (channels.Length == 0) throw new ArgumentException("no channels to write", nameof(channels));
        int frames = channels[0].Length;
        if (channels.Any(c => c.Length != frames)) throw new ArgumentException("channels differ in length", nameof(channels));
        int blockAlign = 2 * channels.Length;
        long dataBytes = (long)frames * blockAlign;
        if (dataBytes > uint.MaxValue - 36) throw new ArgumentException($"{frames} frames do not fit a WAV file", nameof(channels));
        var bytes = new byte[44 + dataBytes];
        var span = bytes.AsSpan();
        "RIFF"u8.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)(36 + dataBytes));
        "WAVEfmt "u8.CopyTo(span[8..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], 16);
        BinaryPrimitives.WriteUInt16LittleEndian(span[20..], FormatPcm);
        BinaryPrimitives.WriteUInt16LittleEndian(span[22..], (ushort)channels.Length);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], sampleRate);
        BinaryPrimitives.WriteInt32LittleEndian(span[28..], sampleRate * blockAlign);
        BinaryPrimitives.WriteUInt16LittleEndian(span[32..], (ushort)blockAlign);
        BinaryPrimitives.WriteUInt16LittleEndian(span[34..], 16);
        "data"u8.CopyTo(span[36..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[40..], (uint)dataBytes);
        int pos = 44;
        for (int f = 0; f < frames; f++)
            foreach (var channel in channels)
            {
                float scaled = MathF.Round(channel[f] * 32768f);
                BinaryPrimitives.WriteInt16LittleEndian(span[pos..], float.IsNaN(scaled) ? (short)0 : (short)Math.Clamp(scaled, short.MinValue, short.MaxValue));
                pos += 2;
            }
        AtomicFile.Write(path, file => file.Write(bytes));
    }
}
