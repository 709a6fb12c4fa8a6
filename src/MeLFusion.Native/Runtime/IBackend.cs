namespace MeLFusion.Native.Runtime;

/// <summary>
/// A place where tensors live and ops run. A backend supports an op by implementing <see cref="IKernel{TOp}"/> for
/// it; models only build graphs and never name a backend.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name used on the command line: "cpu", "cuda", "cuda-emulated".</summary>
    string Name { get; }

    /// <summary>Allocates <paramref name="bytes"/> of backend memory; <paramref name="purpose"/> names it in errors.</summary>
    DeviceBuffer Allocate(long bytes, string purpose);

    void CopyFromHost(ReadOnlySpan<byte> source, nint destination);

    void CopyToHost(nint source, Span<byte> destination);

    /// <summary>Waits until all queued work has finished.</summary>
    void Synchronize();
}

/// <summary>A block of backend memory. Disposing it frees the memory; tensors viewing it become invalid.</summary>
public abstract class DeviceBuffer : IDisposable
{
    protected DeviceBuffer(nint pointer, long length)
    {
        Pointer = pointer;
        Length = length;
    }

    public nint Pointer { get; private set; }
    public long Length { get; }

    public Tensor View(DType dtype, TensorShape shape, long byteOffset = 0)
    {
        long end = byteOffset + shape.SpanElements * dtype.Size();
        if (byteOffset < 0 || end > Length)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"view {dtype}{shape} at byte {byteOffset} exceeds a buffer of {Length} bytes");
        return new Tensor(Pointer + (nint)byteOffset, dtype, shape);
    }

    protected abstract void Free(nint pointer);

    public void Dispose()
    {
        if (Pointer != 0)
        {
            Free(Pointer);
            Pointer = 0;
        }
        GC.SuppressFinalize(this);
    }
}
