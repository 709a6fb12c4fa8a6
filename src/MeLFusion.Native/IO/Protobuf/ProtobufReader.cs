namespace MeLFusion.Native.IO.Protobuf;

/// <summary>A protobuf message is malformed; the message names the source.</summary>
public sealed class ProtobufException(string message) : IOException(message);

/// <summary>
/// A minimal forward-only protobuf wire-format reader (varint, 64-bit, length-delimited, 32-bit fields) over a byte
/// span. Every length is checked against the remaining input.
/// </summary>
public ref struct ProtobufReader(ReadOnlySpan<byte> data, string source)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private readonly string _source = source;
    private int _pos;

    public const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    public readonly bool AtEnd => _pos >= _data.Length;

    /// <summary>Reads the next field key; false at the end of the message.</summary>
    public bool TryReadKey(out int field, out int wireType)
    {
        if (AtEnd)
        {
            field = wireType = 0;
            return false;
        }
        ulong key = ReadVarint();
        field = (int)(key >> 3);
        wireType = (int)(key & 7);
        if (field <= 0) throw Error($"invalid field number {key >> 3}");
        return true;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (AtEnd) throw Error("truncated varint");
            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw Error("varint longer than 10 bytes");
    }

    public float ReadFloat() => BitConverter.Int32BitsToSingle((int)ReadFixed32());

    public uint ReadFixed32()
    {
        if (_data.Length - _pos < 4) throw Error("truncated 32-bit field");
        uint v = BitConverter.ToUInt32(_data.Slice(_pos, 4));
        _pos += 4;
        return v;
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong length = ReadVarint();
        if (length > (ulong)(_data.Length - _pos)) throw Error($"length {length} runs past the end of the message");
        var bytes = _data.Slice(_pos, (int)length);
        _pos += (int)length;
        return bytes;
    }

    public string ReadString()
    {
        var bytes = ReadBytes();
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw Error("string field is not valid UTF-8");
        return System.Text.Encoding.UTF8.GetString(bytes);
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case WireVarint: ReadVarint(); break;
            case WireFixed64:
                if (_data.Length - _pos < 8) throw Error("truncated 64-bit field");
                _pos += 8;
                break;
            case WireLengthDelimited: ReadBytes(); break;
            case WireFixed32: ReadFixed32(); break;
            default: throw Error($"unsupported wire type {wireType}");
        }
    }

    public readonly ProtobufException Error(string what) => new($"{_source}: malformed protobuf at byte {_pos}: {what}");
}
