using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// What the cuda and cuda-emulated backends share: every op's kernel binding (one partial file per op family,
/// implementing <see cref="IKernel{TOp}"/> by launching kernels of kernels/*.cu through <see cref="Launch"/>), the GEMM
/// dispatch and the device-side error checks. A derived backend supplies only memory, copies, kernel launches and
/// synchronisation: real driver calls (<c>CudaBackend</c>) or the CPU emulation (<c>CudaEmulatedBackend</c>).
/// </summary>
public abstract partial class CudaKernelBackend : IBackend, IKernelLauncher
{
    /// <summary>Threads per block of the elementwise and data-movement kernels (grid-stride loops).</summary>
    protected const int ElementwiseThreads = 256;

    /// <summary>
    /// Most blocks an elementwise launch uses; grid-stride loops cover larger tensors. 2^16 blocks of 256 threads
    /// saturate any current GPU several times over.
    /// </summary>
    private const long MaxElementwiseBlocks = 1 << 16;

    public abstract string Name { get; }

    public abstract DeviceBuffer Allocate(long bytes, string purpose);

    public abstract void CopyFromHost(ReadOnlySpan<byte> source, nint destination);

    public abstract void CopyToHost(nint source, Span<byte> destination);

    public abstract void Launch(string kernel, Dim3 grid, Dim3 block, uint sharedBytes, params ReadOnlySpan<LaunchArg> args);

    /// <summary>Waits until all queued work has finished, then reports errors the kernels recorded (bad embedding ids).</summary>
    public virtual void Synchronize()
    {
        WaitForDevice();
        ThrowOnRecordedEmbeddingError();
    }

    /// <summary>Blocks until every launch and copy queued so far has completed.</summary>
    protected abstract void WaitForDevice();

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees what the shared kernel bindings allocated; derived backends free their own resources after calling it.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing) DisposeEmbeddingRecord();
    }

    /// <summary>Launches a grid-stride elementwise kernel over <paramref name="count"/> items (nothing when there are none).</summary>
    protected void LaunchElementwise(string kernel, long count, params ReadOnlySpan<LaunchArg> args)
    {
        if (count <= 0) return;
        long blocks = Math.Min((count + ElementwiseThreads - 1) / ElementwiseThreads, MaxElementwiseBlocks);
        Launch(kernel, (int)blocks, ElementwiseThreads, 0, args);
    }

    /// <summary>
    /// Threads per block of the row-reduction kernels (softmax, layer and RMS norm): the row length rounded up to a
    /// warp, at most <paramref name="max"/>.
    /// </summary>
    protected static int ReductionThreads(long rowLength, int max = 256) =>
        (int)Math.Clamp((rowLength + 31) / 32 * 32, 32, max);

    /// <summary>The kernel suffix of an element size: data-movement kernels copy 2-, 4- or 8-byte units.</summary>
    protected static string UnitSuffix(int bytes) => bytes switch
    {
        1 => "b1",
        2 => "b2",
        4 => "b4",
        8 => "b8",
        16 => "b16",
        _ => throw new ArgumentOutOfRangeException(nameof(bytes), bytes, "no copy kernel moves units of this size"),
    };
}
