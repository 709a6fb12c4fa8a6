namespace MeLFusion.Native.Runtime;

/// <summary>
/// Dimensions and element strides of a tensor view. Immutable; built when a graph is built, never on a hot path.
/// </summary>
public sealed class TensorShape : IEquatable<TensorShape>
{
    private readonly int[] _dims;
    private readonly long[] _strides;

    public TensorShape(params int[] dims) : this(dims, ContiguousStrides(dims)) { }

    public TensorShape(int[] dims, long[] strides)
    {
        if (dims.Length != strides.Length)
            throw new ArgumentException($"shape has {dims.Length} dims but {strides.Length} strides");
        foreach (int d in dims)
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", dims)}]");
        _dims = (int[])dims.Clone();
        _strides = (long[])strides.Clone();
        long n = 1;
        foreach (int d in dims) n = checked(n * d);
        ElementCount = n;
    }

    public int Rank => _dims.Length;
    public long ElementCount { get; }
    public ReadOnlySpan<int> Dims => _dims;
    public ReadOnlySpan<long> Strides => _strides;
    public int this[int axis] => _dims[axis < 0 ? axis + _dims.Length : axis];

    /// <summary>True when elements are laid out row-major without gaps.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = _dims.Length - 1; i >= 0; i--)
            {
                if (_dims[i] != 1 && _strides[i] != expected) return false;
                expected *= _dims[i];
            }
            return true;
        }
    }

    /// <summary>Number of elements between the first and one past the last addressed element.</summary>
    public long SpanElements
    {
        get
        {
            if (ElementCount == 0) return 0;
            long last = 0;
            for (int i = 0; i < _dims.Length; i++) last += (long)(_dims[i] - 1) * _strides[i];
            return last + 1;
        }
    }

    public static long[] ContiguousStrides(ReadOnlySpan<int> dims)
    {
        var strides = new long[dims.Length];
        long s = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= dims[i];
        }
        return strides;
    }

    public TensorShape Permute(ReadOnlySpan<int> order)
    {
        if (order.Length != Rank) throw new ArgumentException($"permutation of rank {order.Length} for a rank-{Rank} tensor");
        var dims = new int[Rank];
        var strides = new long[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int a = order[i];
            if ((uint)a >= (uint)Rank || seen[a]) throw new ArgumentException($"invalid permutation [{string.Join(", ", order.ToArray())}]");
            seen[a] = true;
            dims[i] = _dims[a];
            strides[i] = _strides[a];
        }
        return new TensorShape(dims, strides);
    }

    /// <summary>Narrows <paramref name="axis"/> to [start, start+length); returns the new shape and its element offset.</summary>
    public (TensorShape Shape, long Offset) Slice(int axis, int start, int length)
    {
        if (axis < 0) axis += Rank;
        if ((uint)axis >= (uint)Rank) throw new ArgumentOutOfRangeException(nameof(axis), $"axis {axis} for rank {Rank}");
        if (start < 0 || length < 0 || start + length > _dims[axis])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start + length}) outside dim {axis} of size {_dims[axis]}");
        var dims = (int[])_dims.Clone();
        dims[axis] = length;
        return (new TensorShape(dims, _strides), start * _strides[axis]);
    }

    public bool SameDims(TensorShape other) => _dims.AsSpan().SequenceEqual(other._dims);

    public bool Equals(TensorShape? other) =>
        other is not null && SameDims(other) && _strides.AsSpan().SequenceEqual(other._strides);

    public override bool Equals(object? obj) => Equals(obj as TensorShape);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (int d in _dims) h.Add(d);
        return h.ToHashCode();
    }

    public override string ToString() => "[" + string.Join(", ", _dims) + "]";
}
