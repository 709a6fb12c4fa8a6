using System.Runtime.InteropServices;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// The managed CPU backend: 64-byte aligned native memory and SIMD kernels on all cores. Each op family adds its
/// <see cref="IKernel{TOp}"/> implementation in its own file of this partial class.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    public string Name => "cpu";

    public DeviceBuffer Allocate(long bytes, string purpose) => new HostBuffer(bytes, purpose);

    public unsafe void CopyFromHost(ReadOnlySpan<byte> source, nint destination) =>
        source.CopyTo(new Span<byte>((void*)destination, source.Length));

    public unsafe void CopyToHost(nint source, Span<byte> destination) =>
        new ReadOnlySpan<byte>((void*)source, destination.Length).CopyTo(destination);

    public void Synchronize() { }

    public void Dispose() { }

    /// <summary>Host memory aligned for AVX-512 loads; freed deterministically, never by a finalizer.</summary>
    public sealed unsafe class HostBuffer : DeviceBuffer
    {
        public const int Alignment = 64;

        public HostBuffer(long bytes, string purpose) : base(AllocateAligned(bytes, purpose), bytes) { }

        private static nint AllocateAligned(long bytes, string purpose)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(bytes);
            try
            {
                return (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), Alignment);
            }
            catch (OutOfMemoryException)
            {
                throw new OutOfMemoryException($"cpu: cannot allocate {bytes / 1048576.0:F1} MiB for {purpose}");
            }
        }

        protected override void Free(nint pointer) => NativeMemory.AlignedFree((void*)pointer);
    }
}
