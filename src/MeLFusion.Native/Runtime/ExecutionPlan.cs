using System.Runtime.InteropServices;

namespace MeLFusion.Native.Runtime;

/// <summary>
/// A compiled graph: one arena on one backend and every node bound to its kernel. <see cref="Run"/> replays the
/// graph (a diffusion step, a vocoder chunk) without allocating backend memory.
/// </summary>
public sealed class ExecutionPlan : IDisposable
{
    private readonly IBackend _backend;
    private readonly DeviceBuffer _arena;
    private readonly BoundNode[] _nodes;
    private readonly Dictionary<string, Tensor> _inputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Tensor> _outputs = new(StringComparer.Ordinal);

    internal ExecutionPlan(GraphBuilder graph, IBackend backend, MemoryPlan memory)
    {
        _backend = backend;
        Memory = memory;
        _arena = backend.Allocate(Math.Max(memory.ArenaBytes, MemoryPlanner.Alignment), "graph arena");
        try
        {
            var tensors = new Tensor[graph.Values.Count];
            foreach (var v in graph.Values)
                tensors[v.Id] = Resolve(v, tensors);
            _nodes = new BoundNode[graph.Nodes.Count];
            foreach (var node in graph.Nodes)
            {
                var inputs = node.Inputs.Select(i => tensors[i.Id]).ToArray();
                long wsOffset = memory.WorkspaceByteOffsets[node.Index];
                var workspace = wsOffset < 0
                    ? new Tensor(0, DType.F32, new TensorShape(0))
                    : _arena.View(DType.F32, new TensorShape(checked((int)((memory.WorkspaceBytes[node.Index] + 3) / 4))), wsOffset);
                _nodes[node.Index] = node.Op.Bind(backend, inputs, tensors[node.Output.Id], workspace);
            }
            foreach (var (name, v) in graph.Inputs) _inputs.Add(name, tensors[v.Id]);
            foreach (var (name, v) in graph.Outputs) _outputs.Add(name, tensors[v.Id]);
        }
        catch
        {
            _arena.Dispose();
            throw;
        }

        Tensor Resolve(Value v, Tensor[] resolved) => v.Kind switch
        {
            ValueKind.Constant => v.Constant!.Value,
            ValueKind.View => resolved[v.ViewOf!.Id].WithShape(v.Shape, v.ViewElementOffset),
            _ => _arena.View(v.DType, v.Shape, memory.ValueByteOffsets[v.Id]),
        };
    }

    public MemoryPlan Memory { get; }
    public IBackend Backend => _backend;
    public int NodeCount => _nodes.Length;

    public Tensor Input(string name) =>
        _inputs.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"graph has no input '{name}'");

    /// <summary>The names of the graph's outputs.</summary>
    public IEnumerable<string> OutputNames => _outputs.Keys;

    public Tensor Output(string name) =>
        _outputs.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"graph has no output '{name}'");

    public void SetInput<T>(string name, ReadOnlySpan<T> data) where T : unmanaged
    {
        var t = Input(name);
        var bytes = MemoryMarshal.AsBytes(data);
        if (bytes.Length != t.ByteCount)
            throw new ArgumentException($"input '{name}' is {t} ({t.ByteCount} bytes), got {bytes.Length} bytes");
        _backend.CopyFromHost(bytes, t.Data);
    }

    public void ReadOutput<T>(string name, Span<T> destination) where T : unmanaged
    {
        var t = Output(name);
        var bytes = MemoryMarshal.AsBytes(destination);
        if (bytes.Length != t.ByteCount)
            throw new ArgumentException($"output '{name}' is {t} ({t.ByteCount} bytes), destination has {bytes.Length} bytes");
        _backend.CopyToHost(t.Data, bytes);
    }

    public unsafe T[] ReadOutput<T>(string name) where T : unmanaged
    {
        var result = new T[Output(name).ByteCount / sizeof(T)];
        ReadOutput<T>(name, result);
        return result;
    }

    /// <summary>Runs every node in order; checks <paramref name="cancellation"/> between nodes.</summary>
    public void Run(CancellationToken cancellation = default)
    {
        foreach (var node in _nodes)
        {
            cancellation.ThrowIfCancellationRequested();
            node.Execute();
        }
        _backend.Synchronize();
    }

    public void Dispose() => _arena.Dispose();
}
