using System.Text;
using System.Text.Json;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.IO.Safetensors;

/// <summary>
/// Collects tensors and writes one safetensors file. The file is written beside the target under a temporary
/// name and renamed into place, so an interrupted write never destroys an existing file.
/// </summary>
public sealed class SafetensorsWriter
{
    private const int DataAlignment = 8;
    private readonly List<(string Name, DType DType, int[] Shape, byte[] Data)> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);

    public SafetensorsWriter AddMetadata(string key, string value)
    {
        _metadata[key] = value;
        return this;
    }

    public SafetensorsWriter Add(string name, DType dtype, int[] shape, ReadOnlySpan<byte> data)
    {
        if (name == "__metadata__" || !_names.Add(name))
            throw new ArgumentException($"tensor name '{name}' is reserved or already added");
        long expected = shape.Aggregate(1L, (a, d) => checked(a * d)) * dtype.Size();
        if (expected != data.Length)
            throw new ArgumentException($"tensor '{name}': {dtype}[{string.Join(", ", shape)}] needs {expected} bytes, got {data.Length}");
        _tensors.Add((name, dtype, (int[])shape.Clone(), data.ToArray()));
        return this;
    }

    /// <summary>Adds f32 values stored as <paramref name="dtype"/> (F32, F16 or BF16).</summary>
    public SafetensorsWriter Add(string name, int[] shape, ReadOnlySpan<float> values, DType dtype = DType.F32)
    {
        var bytes = new byte[values.Length * dtype.Size()];
        FloatConversions.FromSingle(values, dtype, bytes);
        return Add(name, dtype, shape, bytes);
    }

    public void Write(string path)
    {
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (_metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in _tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (int d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.Length;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces so the data section starts aligned.
        int padding = (int)((DataAlignment - header.Length % DataAlignment) % DataAlignment);
        header.Write(Encoding.ASCII.GetBytes(new string(' ', padding)));

        AtomicFile.Write(path, file =>
        {
            file.Write(BitConverter.GetBytes((ulong)header.Length));
            header.Position = 0;
            header.CopyTo(file);
            foreach (var t in _tensors) file.Write(t.Data);
        });
    }
}
