using System.Runtime.InteropServices;
using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Interop;
using MeLFusion.Native.Interop.Emulation;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaEmulated;

/// <summary>
/// The "cuda-emulated" backend: the project's CUDA kernels (kernels/*.cu) compiled for the CPU into
/// libmelfusion_emu.so, where every GPU thread is a fiber and barriers and warp collectives are rendezvous. Device
/// memory is 64-byte aligned host memory. It proves the hand-written kernels without a GPU: every op binding, launch
/// configuration and argument list comes from <see cref="CudaKernelBackend"/>, shared with the cuda backend, as does
/// the launch path (<see cref="LaunchArg"/>, <see cref="KernelParams"/>); here every launch is also checked against the
/// kernel's parameter sizes. Launches are synchronous.
/// </summary>
public sealed unsafe class CudaEmulatedBackend : CudaKernelBackend
{
    public override string Name => "cuda-emulated";

    /// <summary>Memory starts as 0xff bytes (NaN in every float type), like uninitialised device memory shows garbage.</summary>
    public override DeviceBuffer Allocate(long bytes, string purpose) => new EmulatedDeviceBuffer(bytes, purpose);

    public override void CopyFromHost(ReadOnlySpan<byte> source, nint destination) =>
        source.CopyTo(new Span<byte>((void*)destination, source.Length));

    public override void CopyToHost(nint source, Span<byte> destination) =>
        new ReadOnlySpan<byte>((void*)source, destination.Length).CopyTo(destination);

    /// <summary>Launches run to completion before they return: nothing is ever in flight.</summary>
    protected override void WaitForDevice() { }

    public override void Launch(string kernel, Dim3 grid, Dim3 block, uint sharedBytes, params ReadOnlySpan<LaunchArg> args)
    {
        var signature = EmulatorNative.Signature(kernel);
        KernelParams.Validate(kernel, signature.ParameterSizes, args);
        void** parameters = stackalloc void*[Math.Max(args.Length, 1)];
        int status;
        fixed (LaunchArg* values = args)
        fixed (byte* name = signature.Utf8Name)
        {
            KernelParams.Point(values, args.Length, parameters);
            status = EmulatorNative.Launch(name, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes, parameters);
        }
        EmulatorNative.ThrowIfFailed(status, kernel);
    }

    /// <summary>
    /// Order in which the threads of a block run between synchronisation points, for launches made from the calling
    /// thread. <see cref="EmulatorSchedule.Reverse"/> and <see cref="EmulatorSchedule.Random"/> turn a missing
    /// __syncthreads into a wrong result. The default comes from MF_EMU_SCHEDULE (in-order, reverse, random[:seed]).
    /// </summary>
    public static void SetSchedule(EmulatorSchedule schedule, ulong seed = 0)
    {
        if (!Enum.IsDefined(schedule)) throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "unknown schedule");
        EmulatorNative.CheckSetting(EmulatorNative.SetSchedule((int)schedule, seed));
    }

    /// <summary>OS threads that the calling thread's launches spread blocks over; 0 restores the default (MF_EMU_THREADS or all cores).</summary>
    public static void SetThreads(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        EmulatorNative.CheckSetting(EmulatorNative.SetThreads(count));
    }

    /// <summary>OS threads that ran blocks in the calling thread's last launch.</summary>
    public static int LastLaunchThreads => EmulatorNative.LastLaunchThreads();

    /// <summary>Kernels the emulator knows, with the library that registered each ("melfusion_emu" for kernels/*.cu).</summary>
    public static IReadOnlyList<(string Name, string Module)> RegisteredKernels() => EmulatorNative.Kernels();

    /// <summary>
    /// Adds the kernels of lib<paramref name="name"/>.so from the emulator's directory (tests load "melfusion_emu_tests")
    /// and returns the library's handle.
    /// </summary>
    public static nint LoadKernelLibrary(string name) => EmulatorNative.LoadKernelLibrary(name);

    private sealed class EmulatedDeviceBuffer : DeviceBuffer
    {
        private const int Alignment = 64;

        public EmulatedDeviceBuffer(long bytes, string purpose) : base(AllocateFilled(bytes, purpose), bytes) { }

        private static nint AllocateFilled(long bytes, string purpose)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(bytes);
            void* memory;
            try
            {
                memory = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), Alignment);
            }
            catch (OutOfMemoryException)
            {
                throw new OutOfMemoryException($"cuda-emulated: cannot allocate {bytes / 1048576.0:F1} MiB for {purpose}");
            }
            NativeMemory.Fill(memory, (nuint)bytes, 0xff);
            return (nint)memory;
        }

        protected override void Free(nint pointer) => NativeMemory.AlignedFree((void*)pointer);
    }
}

/// <summary>Thread order between synchronisation points in the emulator (mf_emu_schedule).</summary>
public enum EmulatorSchedule
{
    /// <summary>What MF_EMU_SCHEDULE says (in order when unset).</summary>
    Default = -1,
    InOrder = 0,
    Reverse = 1,
    /// <summary>A reproducible random order per block and seed.</summary>
    Random = 2,
}
