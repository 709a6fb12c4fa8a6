using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Data;

/// <summary>One cached f32 tensor of an example (a VAE latent, text states, a mask).</summary>
public sealed class FeatureTensor
{
    public FeatureTensor(int[] shape, float[] values)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(values);
        long elements = 1;
        foreach (int d in shape) elements = Math.Min(elements * Math.Max(d, 0), (long)values.Length + 1); // capped: no overflow
        if (shape.Any(d => d < 0) || elements != values.Length)
            throw new ArgumentException($"feature tensor of shape [{string.Join(", ", shape)}] cannot hold {values.Length} values");
        Shape = shape;
        Values = values;
    }

    public int[] Shape { get; }
    public float[] Values { get; }
}

/// <summary>
/// Per-example features that are expensive to compute and fixed while training (frozen VAE latents, frozen text
/// encoder states), cached on disk as one safetensors file per example under <c>&lt;directory&gt;/&lt;version&gt;/</c>.
/// The version string names everything the features depend on (model weights, preprocessing), so changing it starts a
/// fresh cache. Entries are written atomically and carry their example id, version and a SHA-256 of their content;
/// an entry that fails to open, belongs to another id or version, or whose content does not match its hash is reported
/// in <see cref="Warnings"/>, deleted and recomputed. Safe to use from several threads.
/// </summary>
public sealed class FeatureCache
{
    private const string VersionKey = "feature_cache_version", IdKey = "example_id", HashKey = "content_sha256";
    private readonly List<string> _warnings = [];

    public FeatureCache(string directory, string version)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(version);
        Version = version;
        Directory = Path.Combine(Path.GetFullPath(directory), FileName(version));
        System.IO.Directory.CreateDirectory(Directory);
    }

    /// <summary>The folder of this version's entries.</summary>
    public string Directory { get; }

    public string Version { get; }

    /// <summary>One message per corrupt or stale entry met so far, naming the file and the problem.</summary>
    public IReadOnlyList<string> Warnings
    {
        get
        {
            lock (_warnings) return _warnings.ToArray();
        }
    }

    /// <summary>The entry's file: the id itself when it is a plain file name, else a hash of it.</summary>
    public string EntryPath(string exampleId) => Path.Combine(Directory, FileName(exampleId) + ".safetensors");

    /// <summary>The cached features, or null when there is no usable entry (missing, or corrupt and now deleted).</summary>
    public IReadOnlyDictionary<string, FeatureTensor>? TryLoad(string exampleId)
    {
        string path = EntryPath(exampleId);
        if (!File.Exists(path)) return null;
        try
        {
            using var file = SafetensorsFile.Open(path);
            var metadata = file.Metadata;
            if (metadata.GetValueOrDefault(VersionKey) != Version || metadata.GetValueOrDefault(IdKey) != exampleId)
                throw new SafetensorsException($"written for example '{metadata.GetValueOrDefault(IdKey)}' of cache version '{metadata.GetValueOrDefault(VersionKey)}'");
            var features = new SortedDictionary<string, FeatureTensor>(StringComparer.Ordinal);
            foreach (var entry in file.Entries)
            {
                if (entry.DType != DType.F32) throw new SafetensorsException($"tensor '{entry.Name}' is {entry.DType}, not F32");
                features[entry.Name] = new FeatureTensor(entry.Shape, file.ReadF32(entry.Name));
            }
            if (features.Count == 0) throw new SafetensorsException("no tensors");
            if (metadata.GetValueOrDefault(HashKey) != ContentHash(features))
                throw new SafetensorsException("the content does not match its SHA-256");
            return features;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Discard(path, exampleId, e.Message);
            return null;
        }
    }

    /// <summary>Writes the features atomically, replacing any entry of the same id.</summary>
    public void Store(string exampleId, IReadOnlyDictionary<string, FeatureTensor> features)
    {
        ArgumentException.ThrowIfNullOrEmpty(exampleId);
        if (features.Count == 0) throw new ArgumentException($"no features to cache for example '{exampleId}'", nameof(features));
        var sorted = new SortedDictionary<string, FeatureTensor>(features.ToDictionary(), StringComparer.Ordinal);
        var writer = new SafetensorsWriter()
            .AddMetadata(VersionKey, Version)
            .AddMetadata(IdKey, exampleId)
            .AddMetadata(HashKey, ContentHash(sorted));
        foreach (var (name, tensor) in sorted) writer.Add(name, tensor.Shape, tensor.Values);
        writer.Write(EntryPath(exampleId));
    }

    /// <summary>The cached features, or <paramref name="compute"/>'s result, stored for next time.</summary>
    public IReadOnlyDictionary<string, FeatureTensor> GetOrCompute(string exampleId, Func<IReadOnlyDictionary<string, FeatureTensor>> compute)
    {
        if (TryLoad(exampleId) is { } cached) return cached;
        var features = compute();
        Store(exampleId, features);
        return features;
    }

    private void Discard(string path, string exampleId, string problem)
    {
        lock (_warnings) _warnings.Add($"{path}: corrupt feature cache entry for example '{exampleId}' ({problem}); recomputing");
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Store replaces it anyway; a file that cannot be deleted now is overwritten by the rename.
        }
    }

    /// <summary>SHA-256 over each tensor's name, shape and little-endian f32 values, in ordinal name order.</summary>
    private static string ContentHash(SortedDictionary<string, FeatureTensor> features)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> word = stackalloc byte[4];
        foreach (var (name, tensor) in features)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(name + "\0"));
            BinaryPrimitives.WriteInt32LittleEndian(word, tensor.Shape.Length);
            hash.AppendData(word);
            foreach (int d in tensor.Shape)
            {
                BinaryPrimitives.WriteInt32LittleEndian(word, d);
                hash.AppendData(word);
            }
            hash.AppendData(MemoryMarshal.AsBytes(tensor.Values.AsSpan())); // little-endian hosts only, like the safetensors writer
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>A name that is a safe file name as it is (letters, digits, . _ + -), or '~' and 32 hex digits of its SHA-256.</summary>
    private static string FileName(string name)
    {
        bool plain = name.Length is > 0 and <= 100 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '+' or '-');
        return plain ? name : "~" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)), 0, 16);
    }
}
