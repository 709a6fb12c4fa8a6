using System.Runtime.InteropServices;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models;

/// <summary>
/// Small tensors a model computes on the host while it builds a graph (index tables, lookup tables), uploaded once per
/// backend and name and then added to graphs as constants. Disposing frees them, so this must outlive every plan
/// compiled from a graph that uses them. Not thread-safe.
/// </summary>
public sealed class HostConstants : IDisposable
{
    private readonly Dictionary<(IBackend Backend, string Name), (DeviceBuffer Buffer, Tensor Tensor)> _tensors = [];

    /// <summary>
    /// The constant <paramref name="name"/> [<paramref name="dims"/>] on <paramref name="backend"/>, made from
    /// <paramref name="compute"/> the first time it is asked for; later calls reuse the uploaded tensor.
    /// </summary>
    public Value Get<T>(GraphBuilder graph, IBackend backend, string name, int[] dims, Func<T[]> compute) where T : unmanaged
    {
        if (!_tensors.TryGetValue((backend, name), out var entry))
        {
            var shape = new TensorShape(dims);
            T[] values = compute();
            if (values.Length != shape.ElementCount)
                throw new ArgumentException($"constant '{name}': {values.Length} values for shape {shape}");
            var bytes = MemoryMarshal.AsBytes(values.AsSpan());
            var buffer = backend.Allocate(Math.Max(bytes.Length, 1), $"constant '{name}'");
            backend.CopyFromHost(bytes, buffer.Pointer);
            entry = (buffer, buffer.View(DTypeOf<T>(), shape));
            _tensors.Add((backend, name), entry);
        }
        else if (!entry.Tensor.Shape.Dims.SequenceEqual(dims))
        {
            throw new ArgumentException($"constant '{name}' is {entry.Tensor.Shape}, asked for [{string.Join(", ", dims)}]");
        }
        return graph.Constant(name, entry.Tensor);
    }

    private static DType DTypeOf<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.F32
        : typeof(T) == typeof(int) ? DType.I32
        : typeof(T) == typeof(long) ? DType.I64
        : throw new ArgumentException($"constants of {typeof(T).Name} are not supported; use float, int or long");

    public void Dispose()
    {
        foreach (var (buffer, _) in _tensors.Values) buffer.Dispose();
        _tensors.Clear();
    }
}
