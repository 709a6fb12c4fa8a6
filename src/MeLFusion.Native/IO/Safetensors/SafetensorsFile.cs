using System.IO.MemoryMappedFiles;
using System.Text.Json;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.IO.Safetensors;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the data section.</summary>
public sealed record SafetensorsEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public long ByteCount => End - Begin;
    public TensorShape TensorShape => new(Shape);
}

/// <summary>
/// A memory-mapped safetensors file (8-byte little-endian header length, JSON header, raw data). Every header
/// field is validated before any tensor is exposed; tensor views point into the mapping without copying.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Upper bound on the JSON header, so a hostile length cannot force a huge allocation.</summary>
    public const long MaxHeaderBytes = 100L << 20;
    private const int MaxJsonDepth = 8;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly long _fileLength;
    private readonly Dictionary<string, SafetensorsEntry> _entries;

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr,
        long fileLength, long dataStart, Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        _fileLength = fileLength;
        _dataStart = dataStart;
        _entries = entries;
        Metadata = metadata;
        Entries = entries.Values.OrderBy(e => e.Begin).ToArray();
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Entries in file order.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public SafetensorsEntry this[string name] =>
        _entries.TryGetValue(name, out var e) ? e : throw new SafetensorsException($"{Path}: no tensor '{name}'");

    public static SafetensorsFile Open(string path)
    {
        long length;
        try
        {
            length = new FileInfo(path).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new SafetensorsException($"{path}: cannot open: {e.Message}");
        }
        if (length < 8) throw new SafetensorsException($"{path}: {length} bytes is too short for a safetensors header");

        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePtr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            basePtr += view.PointerOffset;
            var (entries, metadata, dataStart) = ParseHeader(path, new ReadOnlySpan<byte>(basePtr, (int)Math.Min(length, int.MaxValue)), length);
            return new SafetensorsFile(path, map, view, basePtr, length, dataStart, entries, metadata);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            view?.Dispose();
            map?.Dispose();
            throw new SafetensorsException($"{path}: cannot map: {e.Message}");
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>, long) ParseHeader(
        string path, ReadOnlySpan<byte> file, long fileLength)
    {
        ulong headerLength = BitConverter.ToUInt64(file[..8]);
        if (headerLength == 0 || headerLength > (ulong)MaxHeaderBytes || headerLength > (ulong)(fileLength - 8))
            throw new SafetensorsException($"{path}: header length {headerLength} is impossible for a {fileLength}-byte file");
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        var headerBytes = file.Slice(8, (int)headerLength);
        // JsonDocument defers UTF-8 validation of strings to first access; validate the whole header up front.
        if (System.Text.Unicode.Utf8.IsValid(headerBytes) is false)
            throw new SafetensorsException($"{path}: header is not valid UTF-8");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = MaxJsonDepth });
        }
        catch (JsonException e)
        {
            throw new SafetensorsException($"{path}: header is not valid JSON: {e.Message}");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsException($"{path}: header is not a JSON object");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    ParseMetadata(path, prop.Value, metadata);
                    continue;
                }
                var entry = ParseEntry(path, prop.Name, prop.Value, dataLength);
                if (!entries.TryAdd(entry.Name, entry))
                    throw new SafetensorsException($"{path}: tensor '{entry.Name}' appears twice in the header");
            }

            SafetensorsEntry? previous = null;
            foreach (var e in entries.Values.OrderBy(e => e.Begin).ThenBy(e => e.End))
            {
                if (previous is not null && e.Begin < previous.End && e.ByteCount > 0 && previous.ByteCount > 0)
                    throw new SafetensorsException($"{path}: tensors '{previous.Name}' and '{e.Name}' overlap in the data section");
                if (e.ByteCount > 0) previous = e;
            }
            return (entries, metadata, dataStart);
        }
    }

    private static void ParseMetadata(string path, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException($"{path}: __metadata__ is not an object");
        foreach (var m in element.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsException($"{path}: __metadata__ value '{m.Name}' is not a string");
            metadata[m.Name] = m.Value.GetString()!;
        }
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement element, long dataLength)
    {
        string where = $"{path}: tensor '{name}'";
        if (element.ValueKind != JsonValueKind.Object) throw new SafetensorsException($"{where}: entry is not an object");
        if (!element.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new SafetensorsException($"{where}: missing dtype");
        if (!DTypeExtensions.TryParseSafetensorsName(dtypeEl.GetString()!, out var dtype))
            throw new SafetensorsException($"{where}: unsupported dtype '{dtypeEl.GetString()}'");
        if (!element.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new SafetensorsException($"{where}: missing shape");
        if (!element.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new SafetensorsException($"{where}: data_offsets must be [begin, end]");

        int rank = shapeEl.GetArrayLength();
        if (rank > 16) throw new SafetensorsException($"{where}: rank {rank} is unreasonable");
        var shape = new int[rank];
        long elements = 1;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new SafetensorsException($"{where}: shape entry {d} is not a non-negative 32-bit integer");
            shape[i++] = dim;
            try { elements = checked(elements * dim); }
            catch (OverflowException) { throw new SafetensorsException($"{where}: shape [{string.Join(", ", shape)}...] overflows"); }
        }

        var offsets = new long[2];
        i = 0;
        foreach (var o in offEl.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long v) || v < 0)
                throw new SafetensorsException($"{where}: data offset {o} is not a non-negative integer");
            offsets[i++] = v;
        }
        long begin = offsets[0], end = offsets[1];
        if (begin > end || end > dataLength)
            throw new SafetensorsException($"{where}: data span [{begin}, {end}) lies outside the {dataLength}-byte data section");
        long expected;
        try { expected = checked(elements * dtype.Size()); }
        catch (OverflowException) { throw new SafetensorsException($"{where}: byte size overflows"); }
        if (expected != end - begin)
            throw new SafetensorsException($"{where}: {dtype.SafetensorsName()}[{string.Join(", ", shape)}] needs {expected} bytes but spans {end - begin}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    /// <summary>The raw bytes of a tensor, straight from the mapping.</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        var e = this[name];
        if (e.ByteCount > int.MaxValue) throw new SafetensorsException($"{Path}: tensor '{name}' is over 2 GiB; use AsTensor");
        return new ReadOnlySpan<byte>(_base + _dataStart + e.Begin, (int)e.ByteCount);
    }

    /// <summary>A zero-copy host tensor view into the mapping; valid while this file is open. Read-only by contract.</summary>
    public Tensor AsTensor(string name)
    {
        var e = this[name];
        return new Tensor((nint)(_base + _dataStart + e.Begin), e.DType, e.TensorShape);
    }

    /// <summary>Reads a floating-point tensor as f32, converting f16/bf16; checks the shape when one is given.</summary>
    public float[] ReadF32(string name, params int[]? expectedShape)
    {
        var e = this[name];
        if (expectedShape is { Length: > 0 } && !expectedShape.AsSpan().SequenceEqual(e.Shape))
            throw new SafetensorsException($"{Path}: tensor '{name}' has shape [{string.Join(", ", e.Shape)}], expected [{string.Join(", ", expectedShape)}]");
        var result = new float[e.Shape.Aggregate(1L, (a, d) => a * d)];
        FloatConversions.ToSingle(Bytes(name), e.DType, result, $"{Path}: tensor '{name}'");
        return result;
    }

    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    public override string ToString() => $"{Path} ({Entries.Count} tensors, {_fileLength} bytes)";
}
