using System.Runtime.InteropServices;
using MeLFusion.Native.Models;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training;

/// <summary>Where one trained tensor lives in the flat buffers: its name, dims and first element.</summary>
public sealed record ParameterSlot(string Name, int[] Dims, long Offset)
{
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);
}

/// <summary>
/// The trained parameters of a model in flat backend buffers: <see cref="State"/> [3, P] holds the weights, AdamW's
/// first and second moments (rows 0-2), <see cref="Gradients"/> [P] the accumulated gradient and <see cref="Ema"/> [P]
/// the moving average of the weights when one is kept. One buffer per role makes the optimizer a few elementwise
/// launches over all parameters, the global gradient norm one reduction, and a checkpoint a few contiguous copies.
/// Frozen tensors stay where the <see cref="WeightSet"/> keeps them and get no gradient memory.
/// </summary>
public sealed class ParameterStore : IDisposable
{
    /// <summary>Each slot starts on a multiple of this many elements (256 bytes), for aligned vector access.</summary>
    private const int SlotAlignment = 64;

    private readonly IBackend _backend;
    private readonly DeviceBuffer _state;
    private readonly DeviceBuffer _gradients;
    private readonly DeviceBuffer? _ema;
    private readonly Dictionary<string, ParameterSlot> _byName;

    /// <summary>
    /// Moves <paramref name="names"/> of <paramref name="weights"/> (which a model graph must already have requested)
    /// into fresh flat buffers on the weight set's backend: moments, gradients zero, the EMA a copy of the weights.
    /// </summary>
    public ParameterStore(WeightSet weights, IEnumerable<string> names, bool keepEma)
    {
        _backend = weights.Backend;
        var slots = new List<ParameterSlot>();
        long offset = 0;
        foreach (string name in names.Distinct().Order(StringComparer.Ordinal))
        {
            var dims = weights.Get(name).Shape.Dims.ToArray();
            var slot = new ParameterSlot(name, dims, offset);
            slots.Add(slot);
            offset += (slot.Count + SlotAlignment - 1) / SlotAlignment * SlotAlignment;
        }
        if (slots.Count == 0) throw new ArgumentException("training: no parameters selected to train");
        Slots = slots;
        Count = offset;
        _byName = slots.ToDictionary(s => s.Name, StringComparer.Ordinal);
        try
        {
            _state = Allocate(3 * Count, "parameters and AdamW moments");
            _gradients = Allocate(Count, "gradients");
            _ema = keepEma ? Allocate(Count, "EMA weights") : null;
            foreach (var slot in slots) weights.MoveTo(slot.Name, Weight(slot.Name));
            if (_ema is not null) Upload(Ema, Download(WeightsRow));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<ParameterSlot> Slots { get; }

    /// <summary>P: elements per flat buffer (slots plus alignment padding, which stays zero).</summary>
    public long Count { get; }

    public IBackend Backend => _backend;
    public Tensor State => _state.View(DType.F32, new TensorShape(3, checked((int)Count)));
    public Tensor WeightsRow => Row(0);
    public Tensor FirstMoments => Row(1);
    public Tensor SecondMoments => Row(2);
    public Tensor Gradients => _gradients.View(DType.F32, new TensorShape(checked((int)Count)));
    public bool HasEma => _ema is not null;
    public Tensor Ema => (_ema ?? throw new InvalidOperationException("this run keeps no EMA")).View(DType.F32, new TensorShape(checked((int)Count)));

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The weights of <paramref name="name"/> inside <see cref="State"/>'s row 0.</summary>
    public Tensor Weight(string name) => SlotView(_state, 0, name);

    /// <summary>The accumulated gradient of <paramref name="name"/> inside <see cref="Gradients"/>.</summary>
    public Tensor Gradient(string name) => SlotView(_gradients, 0, name);

    /// <summary>Copies a flat buffer (a row of the state, the gradients, the EMA) to the host.</summary>
    public float[] Download(Tensor flat)
    {
        var values = new float[flat.ElementCount];
        _backend.CopyToHost(flat.Data, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Overwrites a flat buffer from the host; <paramref name="what"/> names it in errors.</summary>
    public void Upload(Tensor flat, ReadOnlySpan<float> values, string what = "buffer")
    {
        if (values.Length != flat.ElementCount)
            throw new ArgumentException($"parameter store: {what} has {values.Length} values, the store holds {flat.ElementCount}");
        _backend.CopyFromHost(MemoryMarshal.AsBytes(values), flat.Data);
    }

    private Tensor Row(int row) => _state.View(DType.F32, new TensorShape(checked((int)Count)), row * Count * sizeof(float));

    private Tensor SlotView(DeviceBuffer buffer, int row, string name)
    {
        var slot = _byName.TryGetValue(name, out var s) ? s : throw new KeyNotFoundException($"'{name}' is not a trained parameter");
        return buffer.View(DType.F32, new TensorShape(slot.Dims), (row * Count + slot.Offset) * sizeof(float));
    }

    private DeviceBuffer Allocate(long elements, string purpose)
    {
        var buffer = _backend.Allocate(elements * sizeof(float), $"training {purpose}");
        var zeros = new byte[Math.Min(elements * sizeof(float), 1 << 24)];
        for (long done = 0; done < elements * sizeof(float); done += zeros.Length)
            _backend.CopyFromHost(zeros.AsSpan(0, (int)Math.Min(zeros.Length, elements * sizeof(float) - done)), buffer.Pointer + (nint)done);
        return buffer;
    }

    public void Dispose()
    {
        _state?.Dispose();
        _gradients?.Dispose();
        _ema?.Dispose();
    }
}
