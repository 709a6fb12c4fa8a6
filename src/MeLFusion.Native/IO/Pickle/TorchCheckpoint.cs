using System.IO.Compression;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.IO.Pickle;

/// <summary>
/// A PyTorch checkpoint in the zip format of <c>torch.save</c> (PyTorch ≥ 1.6): a restricted pickle of a (possibly
/// nested) state dict plus one raw storage file per tensor storage. Tensors are exposed by their dotted names.
/// </summary>
public sealed class TorchCheckpoint : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly string _prefix;
    private readonly Dictionary<string, PickleTensor> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _storages = new(StringComparer.Ordinal);

    private TorchCheckpoint(string path, ZipArchive zip, string prefix, object? root)
    {
        Path = path;
        _zip = zip;
        _prefix = prefix;
        Flatten(root, "");
    }

    public string Path { get; }
    public IReadOnlyCollection<string> Names => _tensors.Keys;

    public static TorchCheckpoint Open(string path)
    {
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException)
        {
            throw new PickleException($"{path}: not a zip-format PyTorch checkpoint (legacy torch.save files before PyTorch 1.6 are not supported)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PickleException($"{path}: cannot open: {e.Message}");
        }
        try
        {
            var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                ?? throw new PickleException($"{path}: zip holds no <archive>/data.pkl");
            string prefix = pkl.FullName[..^"data.pkl".Length];
            object? root = RestrictedUnpickler.Load(ReadEntry(path, pkl, 1L << 30), $"{path}: {pkl.FullName}");
            return new TorchCheckpoint(path, zip, prefix, root);
        }
        catch (InvalidDataException e)
        {
            zip.Dispose();
            throw new PickleException($"{path}: corrupt zip: {e.Message}");
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    private static byte[] ReadEntry(string path, ZipArchiveEntry entry, long limit)
    {
        if (entry.Length > limit) throw new PickleException($"{path}: {entry.FullName} is {entry.Length} bytes, over the {limit}-byte limit");
        var bytes = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new PickleException($"{path}: {entry.FullName} is corrupt: {e.Message}");
        }
        return bytes;
    }

    private void Flatten(object? node, string prefix)
    {
        switch (node)
        {
            case PickleTensor t:
                _tensors[prefix] = t;
                break;
            case List<KeyValuePair<object?, object?>> dict:
                foreach (var (k, v) in dict)
                    if (k is string key) Flatten(v, prefix.Length == 0 ? key : prefix + "." + key);
                break;
        }
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public PickleTensor Info(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new PickleException($"{Path}: no tensor '{name}'");

    /// <summary>The element type of a storage type name ("FloatStorage" → F32).</summary>
    public static (DType DType, int Size) StorageElement(string storageType, string where) => storageType switch
    {
        "FloatStorage" => (DType.F32, 4),
        "HalfStorage" => (DType.F16, 2),
        "BFloat16Storage" => (DType.BF16, 2),
        "LongStorage" => (DType.I64, 8),
        "IntStorage" => (DType.I32, 4),
        _ => throw new PickleException($"{where}: storage type {storageType} is not supported"),
    };

    /// <summary>Reads a floating-point tensor as contiguous f32 values, honouring its offset and strides.</summary>
    public float[] ReadF32(string name)
    {
        var t = Info(name);
        string where = $"{Path}: tensor '{name}'";
        var (dtype, size) = StorageElement(t.Storage.StorageType, where);
        if (dtype is DType.I32 or DType.I64) throw new PickleException($"{where} is {dtype}, not floating point");
        byte[] storage = Storage(t.Storage, size, where);
        long count, maxIndex;
        try
        {
            count = t.Shape.Aggregate(1L, (a, d) => checked(a * d));
            maxIndex = checked(t.Offset + t.Shape.Select((d, i) => d == 0 ? 0 : checked((d - 1) * t.Strides[i])).Sum());
        }
        catch (OverflowException)
        {
            throw new PickleException($"{where}: shape and strides overflow");
        }
        if (count > 0 && (t.Offset < 0 || maxIndex >= t.Storage.ElementCount))
            throw new PickleException($"{where}: view reaches element {maxIndex} of a {t.Storage.ElementCount}-element storage");
        var all = new float[t.Storage.ElementCount];
        FloatConversions.ToSingle(storage, dtype, all, where);
        var result = new float[count];
        var index = new int[t.Shape.Length];
        for (long i = 0; i < count; i++)
        {
            long src = t.Offset;
            for (int d = 0; d < index.Length; d++) src += index[d] * t.Strides[d];
            result[i] = all[src];
            for (int d = index.Length - 1; d >= 0 && ++index[d] == t.Shape[d]; d--) index[d] = 0;
        }
        return result;
    }

    private byte[] Storage(PickleStorage s, int elementSize, string where)
    {
        if (!_storages.TryGetValue(s.Key, out var bytes))
        {
            var entry = _zip.GetEntry(_prefix + "data/" + s.Key)
                ?? throw new PickleException($"{where}: storage file data/{s.Key} is missing");
            _storages[s.Key] = bytes = ReadEntry(Path, entry, int.MaxValue);
        }
        if (s.ElementCount > int.MaxValue / elementSize || bytes.Length != s.ElementCount * elementSize)
            throw new PickleException($"{where}: storage data/{s.Key} has {bytes.Length} bytes, expected {s.ElementCount} x {elementSize}");
        return bytes;
    }

    public void Dispose() => _zip.Dispose();
}
