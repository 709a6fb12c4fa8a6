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
    protected const long MaxElementwiseBlocks = 1 << 16;

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
    /// Launches a row kernel (one block per row of the last dim, <paramref name="length"/> elements each) over
    /// <paramref name="output"/>'s rows; nothing when there are none.
    /// </summary>
    protected void LaunchRows(string kernel, string op, Tensor output, int length, params ReadOnlySpan<LaunchArg> args)
    {
        if (output.ElementCount == 0) return;
        long rows = output.ElementCount / length;
        if (rows > int.MaxValue)
            throw new NotSupportedException($"{op}: {output} has {rows} rows; a launch takes at most {int.MaxValue} (one block per row)");
        Launch(kernel, (int)rows, ReductionThreads(length), 0, args);
    }

    /// <summary>
    /// Threads per block of the block-reduction kernels (softmax, layer and RMS norm, the embedding check): the length
    /// rounded up to a warp, at most 256 (longer rows loop).
    /// </summary>
    protected static int ReductionThreads(long length) => (int)Math.Clamp((length + 31) / 32 * 32, 32, 256);

    /// <summary>The kernel suffix of a copy unit in bytes: data-movement kernels move 1- to 16-byte units ("b1" to "b16").</summary>
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
