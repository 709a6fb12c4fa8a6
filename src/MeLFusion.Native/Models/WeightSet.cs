using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models;

/// <summary>A checkpoint lacks a tensor or holds one of the wrong shape; the message names file and tensor.</summary>
public sealed class CheckpointException(string message) : Exception(message);

/// <summary>
/// The weights of a model on one backend, read from safetensors files. On the CPU, f32 tensors are used in place
/// from the memory mapping (no copy); anything else is converted to f32 or uploaded once. Models ask for each tensor
/// by its checkpoint name and expected shape, so a wrong checkpoint fails with a message naming the tensor.
/// </summary>
public sealed class WeightSet : IDisposable
{
    private readonly IBackend _backend;
    private readonly List<SafetensorsFile> _files = [];
    private readonly List<DeviceBuffer> _buffers = [];
    private readonly Dictionary<string, Tensor> _loaded = new(StringComparer.Ordinal);
    private readonly WeightInitializer? _initializer;

    public WeightSet(IBackend backend, params string[] paths)
    {
        _backend = backend;
        try
        {
            foreach (string path in paths) _files.Add(SafetensorsFile.Open(path));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// A weight set that creates every tensor a model asks for, randomly initialised by <paramref name="seed"/> (see
    /// <see cref="WeightInitializer"/>): building a model's graph against it defines a fresh model, which
    /// <see cref="Save"/> writes as a checkpoint. Training from scratch and untrained stand-in models start here.
    /// </summary>
    public static WeightSet Initialize(IBackend backend, ulong seed, float synapseAlpha = 0) =>
        new(backend, new WeightInitializer(seed, synapseAlpha));

    /// <summary>
    /// A set read from <paramref name="paths"/> that initialises (by <paramref name="seed"/>) whatever the files lack:
    /// training heads that only a training run adds (e.g. the text encoder's contrastive projections).
    /// </summary>
    public static WeightSet OpenOrInitialize(IBackend backend, ulong seed, params string[] paths)
    {
        var set = new WeightSet(backend, new WeightInitializer(seed));
        try
        {
            foreach (string path in paths) set._files.Add(SafetensorsFile.Open(path));
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    private WeightSet(IBackend backend, WeightInitializer initializer)
    {
        _backend = backend;
        _initializer = initializer;
    }

    public IBackend Backend => _backend;
    public IEnumerable<string> Names => _files.SelectMany(f => f.Entries.Select(e => e.Name));

    /// <summary>The tensors models have asked for so far (or, for an initialising set, created).</summary>
    public IReadOnlyCollection<string> RequestedNames => _loaded.Keys;

    /// <summary>Whether the set can supply <paramref name="name"/>; an initialising set supplies every name.</summary>
    public bool Contains(string name) => _initializer is not null || _loaded.ContainsKey(name) || _files.Any(f => f.Contains(name));

    /// <summary>The tensor <paramref name="name"/> as f32 on the backend; checks its dims when given.</summary>
    public Tensor Get(string name, params int[] expectedDims)
    {
        if (!_loaded.TryGetValue(name, out var tensor))
            _loaded[name] = tensor = _files.Any(f => f.Contains(name)) || _initializer is null ? LoadFromFiles(name) : Create(name, expectedDims);
        if (expectedDims.Length > 0 && !tensor.Shape.Dims.SequenceEqual(expectedDims))
            throw new CheckpointException($"tensor '{name}' has shape {tensor.Shape}, the model expects [{string.Join(", ", expectedDims)}]");
        return tensor;
    }

    /// <summary>
    /// Moves tensor <paramref name="name"/> into <paramref name="destination"/> (backend memory the caller owns and keeps
    /// alive, e.g. a training run's flat parameter buffer): its values are copied there and every later
    /// <see cref="Get"/>, graph and <see cref="Save"/> uses that memory, so updates made there are the model's weights.
    /// </summary>
    public void MoveTo(string name, Tensor destination)
    {
        var source = _loaded.TryGetValue(name, out var t) ? t
            : throw new CheckpointException($"cannot move '{name}': no model has asked for it yet");
        if (!source.Shape.SameDims(destination.Shape) || destination.DType != DType.F32 || !destination.IsContiguous)
            throw new ArgumentException($"cannot move '{name}' {source} into {destination}");
        var values = new byte[source.ByteCount];
        _backend.CopyToHost(source.Data, values);
        _backend.CopyFromHost(values, destination.Data);
        _loaded[name] = destination;
    }

    /// <summary>Adds <paramref name="name"/> to <paramref name="graph"/> as a constant.</summary>
    public Value Constant(GraphBuilder graph, string name, params int[] expectedDims) =>
        graph.Constant(name, Get(name, expectedDims));

    private Tensor Create(string name, int[] dims)
    {
        if (dims.Length == 0) throw new CheckpointException($"cannot initialise '{name}' without its shape");
        return Upload(name, _initializer!.Create(name, dims), dims);
    }

    private Tensor LoadFromFiles(string name)
    {
        var file = _files.FirstOrDefault(f => f.Contains(name))
            ?? throw new CheckpointException($"{string.Join(", ", _files.Select(f => f.Path))}: no tensor '{name}'");
        return Load(file, file[name]);
    }

    private Tensor Load(SafetensorsFile file, SafetensorsEntry entry)
    {
        if (entry.DType == DType.F32 && _backend is CpuBackend) return file.AsTensor(entry.Name);
        if (entry.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new CheckpointException($"{file.Path}: tensor '{entry.Name}' is {entry.DType}, weights must be floating point");
        return Upload(entry.Name, file.ReadF32(entry.Name), entry.Shape);
    }

    private Tensor Upload(string name, float[] values, int[] dims)
    {
        var buffer = _backend.Allocate((long)values.Length * sizeof(float), $"weight '{name}'");
        _buffers.Add(buffer);
        _backend.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), buffer.Pointer);
        return buffer.View(DType.F32, new TensorShape(dims));
    }

    /// <summary>Writes every tensor of this set (in name order) as an f32 safetensors checkpoint.</summary>
    public void Save(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var writer = new SafetensorsWriter();
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>()) writer.AddMetadata(key, value);
        AddTo(writer);
        writer.Write(path);
    }

    /// <summary>Adds every tensor of this set, in name order, as f32 to <paramref name="writer"/>.</summary>
    public void AddTo(SafetensorsWriter writer)
    {
        foreach (var (name, tensor) in _loaded.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var values = new float[tensor.ElementCount];
            _backend.CopyToHost(tensor.Data, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            writer.Add(name, tensor.Shape.Dims.ToArray(), values);
        }
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        foreach (var f in _files) f.Dispose();
        _buffers.Clear();
        _files.Clear();
    }
}
