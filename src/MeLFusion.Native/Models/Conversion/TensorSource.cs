using MeLFusion.Native.IO.Pickle;
using MeLFusion.Native.IO.Safetensors;

namespace MeLFusion.Native.Models.Conversion;

/// <summary>A source tensor the conversion leaves out on purpose, and why.</summary>
public sealed record DroppedTensor(string Name, string Reason);

/// <summary>
/// A checkpoint being converted: a zip-format PyTorch checkpoint (names of nested dicts joined with dots) or a
/// safetensors file, read tensor by tensor as f32. It records what becomes of every tensor (claimed by a converted
/// part, or dropped with a reason), so that the tensors no converter understood can be reported.
/// </summary>
public sealed class TensorSource : IDisposable
{
    private readonly TorchCheckpoint? _torch;
    private readonly SafetensorsFile? _safetensors;
    private readonly HashSet<string> _names;
    private readonly HashSet<string> _claimed = new(StringComparer.Ordinal);
    private readonly List<DroppedTensor> _dropped = [];
    private readonly HashSet<string> _droppedNames = new(StringComparer.Ordinal);
    private bool _disposed;

    private TensorSource(string path, TorchCheckpoint? torch, SafetensorsFile? safetensors)
    {
        Path = path;
        _torch = torch;
        _safetensors = safetensors;
        Names = torch is not null ? [.. torch.Names] : [.. safetensors!.Entries.Select(e => e.Name)];
        _names = new HashSet<string>(Names, StringComparer.Ordinal);
    }

    public string Path { get; }

    /// <summary>Every tensor name, in checkpoint order.</summary>
    public IReadOnlyList<string> Names { get; }

    public IReadOnlyList<DroppedTensor> Dropped => _dropped;

    /// <summary>Tensors neither claimed nor dropped: names no converter recognised.</summary>
    public IReadOnlyList<string> Unclaimed => Names.Where(n => !_claimed.Contains(n) && !_droppedNames.Contains(n)).ToArray();

    /// <summary>Opens a zip PyTorch checkpoint (recognised by its "PK" signature) or else a safetensors file.</summary>
    public static TensorSource Open(string path)
    {
        if (IsZip(path)) return new TensorSource(path, TorchCheckpoint.Open(path), null);
        return new TensorSource(path, null, SafetensorsFile.Open(path));
    }

    private static bool IsZip(string path)
    {
        Span<byte> signature = stackalloc byte[2];
        try
        {
            using var file = File.OpenRead(path);
            return file.ReadAtLeast(signature, 2, throwOnEndOfStream: false) == 2 && signature[0] == (byte)'P' && signature[1] == (byte)'K';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"{path}: cannot open: {e.Message}");
        }
    }

    public bool Contains(string name) => _names.Contains(name);

    /// <summary>Names starting with <paramref name="prefix"/>, in checkpoint order.</summary>
    public IEnumerable<string> NamesUnder(string prefix) => Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal));

    public int[] Shape(string name) => _torch is not null ? _torch.Info(name).Shape : _safetensors![name].Shape;

    public float[] ReadF32(string name) => _torch is not null ? _torch.ReadF32(name) : _safetensors!.ReadF32(name);

    /// <summary>
    /// The prefix under which this checkpoint holds <paramref name="marker"/> (a name only one model has), e.g.
    /// "" for a bare state dict, "generator." or "unet_state_dict." for a wrapped one; null when it is absent.
    /// </summary>
    public string? PrefixOf(string marker)
    {
        var hits = Names.Where(n => n == marker || n.EndsWith("." + marker, StringComparison.Ordinal)).ToArray();
        if (hits.Length > 1)
            throw new CheckpointException($"{Path}: '{marker}' appears under several prefixes ({string.Join(", ", hits)}); cannot tell which model to convert");
        return hits.Length == 0 ? null : hits[0][..^marker.Length];
    }

    /// <summary>Whether two tensors hold the same shape and equal values.</summary>
    public bool Identical(string a, string b) =>
        Shape(a).AsSpan().SequenceEqual(Shape(b)) && ReadF32(a).AsSpan().SequenceEqual(ReadF32(b));

    internal void Claim(string name)
    {
        if (!_names.Contains(name)) throw new CheckpointException($"{Path}: no tensor '{name}'");
        _claimed.Add(name);
    }

    internal void Drop(string name, string reason)
    {
        if (_droppedNames.Add(name)) _dropped.Add(new DroppedTensor(name, reason));
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _torch?.Dispose();
        _safetensors?.Dispose();
    }
}
