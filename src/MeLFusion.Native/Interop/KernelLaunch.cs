using System.Runtime.InteropServices;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Interop;

/// <summary>Grid or block dimensions of a kernel launch, as cuLaunchKernel takes them.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new(checked((uint)x));
    public static implicit operator Dim3((int X, int Y) d) => new(checked((uint)d.X), checked((uint)d.Y));
    public static implicit operator Dim3((int X, int Y, int Z) d) => new(checked((uint)d.X), checked((uint)d.Y), checked((uint)d.Z));

    public override string ToString() => $"({X},{Y},{Z})";
}

/// <summary>
/// One kernel argument passed by value: its bytes (little-endian, at offset 0) and its size, 4 or 8. A span of these is
/// turned into cuLaunchKernel's <c>kernelParams</c> by <see cref="KernelParams"/>; the real and emulated CUDA
/// backends share that path.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct LaunchArg
{
    private readonly ulong _bits; // first field: its address is the kernelParams entry

    private LaunchArg(ulong bits, int size)
    {
        _bits = bits;
        Size = size;
    }

    /// <summary>Bytes the kernel parameter occupies.</summary>
    public int Size { get; }

    /// <summary>A null device pointer (an absent optional tensor).</summary>
    public static LaunchArg NullPointer => new(0, 8);

    public static implicit operator LaunchArg(int value) => new(unchecked((uint)value), 4);
    public static implicit operator LaunchArg(uint value) => new(value, 4);
    public static implicit operator LaunchArg(float value) => new(BitConverter.SingleToUInt32Bits(value), 4);
    public static implicit operator LaunchArg(long value) => new(unchecked((ulong)value), 8);
    public static implicit operator LaunchArg(ulong value) => new(value, 8);
    public static implicit operator LaunchArg(nint pointer) => new(unchecked((ulong)(long)pointer), 8);

    /// <summary>The tensor's device address.</summary>
    public static implicit operator LaunchArg(Tensor tensor) => new(unchecked((ulong)(long)tensor.Data), 8);

    public override string ToString() => Size == 4 ? $"0x{(uint)_bits:x8}" : $"0x{_bits:x16}";
}

/// <summary>Builds cuLaunchKernel's <c>kernelParams</c>: one pointer per argument, pointing at its value.</summary>
public static unsafe class KernelParams
{
    /// <summary>Fills <paramref name="destination"/> for <paramref name="count"/> pinned arguments.</summary>
    public static void Point(LaunchArg* args, int count, void** destination)
    {
        for (int i = 0; i < count; i++) destination[i] = &args[i];
    }

    /// <summary>Throws unless the arguments match the kernel's parameters in number and size.</summary>
    public static void Validate(string kernel, ReadOnlySpan<int> parameterSizes, ReadOnlySpan<LaunchArg> args)
    {
        if (args.Length != parameterSizes.Length)
            throw new ArgumentException($"kernel '{kernel}' takes {parameterSizes.Length} parameters, got {args.Length} arguments");
        for (int i = 0; i < args.Length; i++)
            if (args[i].Size != parameterSizes[i])
                throw new ArgumentException(
                    $"kernel '{kernel}' parameter {i} is {parameterSizes[i]} bytes, the argument is {args[i].Size} ({args[i]})");
    }
}

/// <summary>Something that runs the project's CUDA kernels by name: the cuda backend or its CPU emulation.</summary>
public interface IKernelLauncher
{
    /// <summary>
    /// Runs <paramref name="kernel"/> (an <c>extern "C"</c> kernel of kernels/*.cu) over <paramref name="grid"/> blocks
    /// of <paramref name="block"/> threads with <paramref name="sharedBytes"/> of dynamic shared memory.
    /// </summary>
    void Launch(string kernel, Dim3 grid, Dim3 block, uint sharedBytes, params ReadOnlySpan<LaunchArg> args);
}

/// <summary>A kernel launch failed: the kernel's name and the backend's message (for the emulator: the source line).</summary>
public sealed class KernelLaunchException(string kernel, int status, string message)
    : Exception(message.Contains($"'{kernel}'", StringComparison.Ordinal) ? message : $"kernel '{kernel}': {message}")
{
    public string Kernel { get; } = kernel;

    /// <summary>The backend's status code (mf_emu_status for the emulator, CUresult for the driver).</summary>
    public int Status { get; } = status;
}
