using System.Runtime.InteropServices;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// A cuda-emulated backend with the test-only kernels of kernels/emu/tests loaded, plus upload/download helpers.
/// Settings (schedule, threads) are per calling thread: each test sets what it needs and disposing restores the
/// defaults, so parallel test classes do not disturb each other.
/// </summary>
public sealed class EmulatedDevice : IDisposable
{
    private static readonly Lazy<nint> TestKernels = new(() => CudaEmulatedBackend.LoadKernelLibrary("melfusion_emu_tests"));

    /// <summary>Handle of libmelfusion_emu_tests.so (test kernels and host helpers).</summary>
    public static nint TestLibrary => TestKernels.Value;

    private readonly List<DeviceBuffer> _buffers = [];

    public EmulatedDevice(EmulatorSchedule schedule = EmulatorSchedule.Default, ulong seed = 0, int threads = 0)
    {
        _ = TestKernels.Value;
        CudaEmulatedBackend.SetSchedule(schedule, seed);
        CudaEmulatedBackend.SetThreads(threads);
    }

    public CudaEmulatedBackend Backend { get; } = new();

    /// <summary>A device copy of <paramref name="values"/> viewed as <paramref name="dtype"/> (same element size).</summary>
    public unsafe Tensor Upload<T>(T[] values, DType dtype, params int[] shape) where T : unmanaged
    {
        if (sizeof(T) != dtype.Size()) throw new ArgumentException($"{typeof(T).Name} values cannot be {dtype} elements");
        return UploadBytes(MemoryMarshal.AsBytes(values.AsSpan()), dtype, shape.Length == 0 ? [values.Length] : shape);
    }

    /// <summary>A device tensor holding <paramref name="bytes"/>, already encoded as <paramref name="dtype"/>.</summary>
    public Tensor UploadBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape)
    {
        var tensor = Allocate(dtype, shape);
        if (tensor.ByteCount != bytes.Length) throw new ArgumentException($"{bytes.Length} bytes for {tensor}");
        Backend.CopyFromHost(bytes, tensor.Data);
        return tensor;
    }

    /// <summary>Fresh device memory (0xff bytes: NaN, or -1 as integers).</summary>
    public Tensor Allocate(DType dtype, params int[] shape)
    {
        var tensorShape = new TensorShape(shape);
        var buffer = Backend.Allocate(tensorShape.ElementCount * dtype.Size(), "test tensor");
        _buffers.Add(buffer);
        return buffer.View(dtype, tensorShape);
    }

    public unsafe T[] Download<T>(Tensor tensor) where T : unmanaged
    {
        if (sizeof(T) != tensor.DType.Size()) throw new ArgumentException($"{tensor} cannot be read as {typeof(T).Name}");
        var values = new T[tensor.ElementCount];
        Backend.CopyToHost(tensor.Data, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }

    /// <summary>Runs a graph on a fresh emulated device under <paramref name="schedule"/> spread over <paramref name="threads"/> OS threads.</summary>
    public static float[] RunGraph(Func<GraphBuilder, Value[], Value> build, OpRunner.Feed[] feeds, EmulatorSchedule schedule, ulong seed, int threads)
    {
        using var device = new EmulatedDevice(schedule, seed, threads);
        return OpRunner.Run(device.Backend, build, feeds);
    }

    public void Launch(string kernel, Dim3 grid, Dim3 block, uint sharedBytes, params ReadOnlySpan<LaunchArg> args) =>
        Backend.Launch(kernel, grid, block, sharedBytes, args);

    public void Dispose()
    {
        foreach (var buffer in _buffers) buffer.Dispose();
        CudaEmulatedBackend.SetSchedule(EmulatorSchedule.Default);
        CudaEmulatedBackend.SetThreads(0);
    }
}
