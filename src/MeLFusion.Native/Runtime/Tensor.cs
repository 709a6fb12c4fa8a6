using System.Runtime.CompilerServices;

namespace MeLFusion.Native.Runtime;

/// <summary>
/// A view of backend memory: a base address (host pointer on <c>cpu</c>, device pointer on <c>cuda</c>), a dtype and a
/// strided shape. Tensors own nothing; their memory belongs to an arena, a weight file or a caller.
/// </summary>
public readonly struct Tensor
{
    public Tensor(nint data, DType dtype, TensorShape shape)
    {
        Data = data;
        DType = dtype;
        Shape = shape;
    }

    /// <summary>Address of element 0 of this view.</summary>
    public nint Data { get; }
    public DType DType { get; }
    public TensorShape Shape { get; }

    public long ElementCount => Shape.ElementCount;
    public long ByteCount => Shape.SpanElements * DType.Size();
    public bool IsContiguous => Shape.IsContiguous;
    public int Rank => Shape.Rank;
    public int Dim(int axis) => Shape[axis];

    /// <summary>Host view of a contiguous tensor. Valid only for tensors in host memory.</summary>
    public unsafe Span<T> AsSpan<T>() where T : unmanaged
    {
        if (sizeof(T) != DType.Size())
            throw new InvalidOperationException($"tensor of {DType} viewed as {typeof(T).Name}");
        if (!IsContiguous)
            throw new InvalidOperationException($"tensor {Shape} is not contiguous");
        return new Span<T>((void*)Data, checked((int)ElementCount));
    }

    /// <summary>Pointer to element 0 as <typeparamref name="T"/>. Valid only for tensors in host memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe T* Ptr<T>() where T : unmanaged => (T*)Data;

    public Tensor WithShape(TensorShape shape, long elementOffset = 0) =>
        new(Data + (nint)(elementOffset * DType.Size()), DType, shape);

    public override string ToString() => $"{DType}{Shape}";
}
