using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MeLFusion.Native.Interop.Cuda;

/// <summary>CUresult; only the codes the engine reports by name are listed, the rest print as numbers.</summary>
public enum CudaResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    NoDevice = 100,
    InvalidDevice = 101,
    InvalidImage = 200,
    NoBinaryForGpu = 209,
    NotFound = 500,
    NotReady = 600,
    LaunchOutOfResources = 701,
    LaunchTimeout = 702,
    IllegalAddress = 700,
    StreamCaptureUnsupported = 900,
}

/// <summary>
/// Thin <c>LibraryImport</c> bindings to the CUDA driver API (libcuda.so.1). Every method returns the raw
/// <see cref="CudaResult"/>; callers go through <see cref="Check"/>, the one place that turns a failure into a
/// <see cref="CudaException"/>. Pointers and sizes are <c>nint</c>/<c>nuint</c>; handles are opaque <c>nint</c>s.
/// </summary>
public static unsafe partial class CudaDriver
{
    public const string Library = "libcuda.so.1";

    private static readonly Lazy<bool> s_available = new(() => NativeLibrary.TryLoad(Library, out _));

    /// <summary>True when the driver library can be loaded (an NVIDIA driver is installed).</summary>
    public static bool IsAvailable => s_available.Value;

    /// <summary>Loads and initialises the driver, or explains why it cannot.</summary>
    public static void EnsureInitialized()
    {
        if (!IsAvailable)
            throw new CudaUnavailableException($"the CUDA driver ({Library}) cannot be loaded: no NVIDIA driver is installed on this machine; use --device cpu or cuda-emulated");
        var result = cuInit(0);
        if (result != CudaResult.Success)
            throw new CudaUnavailableException($"the CUDA driver is installed but cannot start ({ErrorName(result)}): no usable GPU; use --device cpu or cuda-emulated");
        Check(cuDeviceGetCount(out int count), "cuDeviceGetCount");
        if (count == 0)
            throw new CudaUnavailableException("the CUDA driver reports no GPU; use --device cpu or cuda-emulated");
    }

    private static string ErrorName(CudaResult result) =>
        cuGetErrorName(result, out nint name) == CudaResult.Success && name != 0 ? Marshal.PtrToStringUTF8(name) ?? result.ToString() : result.ToString();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(CudaResult result, string call)
    {
        if (result != CudaResult.Success) Throw(result, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(CudaResult result, string call)
    {
        string name = ErrorName(result), description = "";
        if (cuGetErrorString(result, out nint textPtr) == CudaResult.Success && textPtr != 0)
            description = Marshal.PtrToStringUTF8(textPtr) ?? "";
        throw new CudaException(call, name, description);
    }

    #region Errors and initialisation
    [LibraryImport(Library)] public static partial CudaResult cuInit(uint flags);
    [LibraryImport(Library)] public static partial CudaResult cuGetErrorName(CudaResult error, out nint name);
    [LibraryImport(Library)] public static partial CudaResult cuGetErrorString(CudaResult error, out nint text);
    [LibraryImport(Library)] public static partial CudaResult cuDriverGetVersion(out int version);
    #endregion

    #region Device and context
    [LibraryImport(Library)] public static partial CudaResult cuDeviceGetCount(out int count);
    [LibraryImport(Library)] public static partial CudaResult cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Library)] public static partial CudaResult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Library)] public static partial CudaResult cuDeviceGetAttribute(out int value, DeviceAttribute attribute, int device);
    [LibraryImport(Library, EntryPoint = "cuDeviceTotalMem_v2")] public static partial CudaResult cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Library)] public static partial CudaResult cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Library, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial CudaResult cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Library)] public static partial CudaResult cuCtxSetCurrent(nint context);
    [LibraryImport(Library)] public static partial CudaResult cuCtxSynchronize();
    #endregion

    #region Modules and launch
    [LibraryImport(Library)] public static partial CudaResult cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Library)] public static partial CudaResult cuModuleUnload(nint module);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial CudaResult cuModuleGetFunction(out nint function, nint module, string name);
    [LibraryImport(Library)] public static partial CudaResult cuFuncSetAttribute(nint function, FunctionAttribute attribute, int value);

    [LibraryImport(Library), SuppressGCTransition]
    public static partial CudaResult cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedMemBytes, nint stream, void** kernelParams, void** extra);
    #endregion

    #region Memory
    [LibraryImport(Library, EntryPoint = "cuMemAlloc_v2")] public static partial CudaResult cuMemAlloc(out nint pointer, nuint bytes);
    [LibraryImport(Library, EntryPoint = "cuMemFree_v2")] public static partial CudaResult cuMemFree(nint pointer);
    [LibraryImport(Library)] public static partial CudaResult cuMemAllocAsync(out nint pointer, nuint bytes, nint stream);
    [LibraryImport(Library)] public static partial CudaResult cuMemFreeAsync(nint pointer, nint stream);
    [LibraryImport(Library, EntryPoint = "cuMemGetInfo_v2")] public static partial CudaResult cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Library)] public static partial CudaResult cuMemsetD8Async(nint pointer, byte value, nuint count, nint stream);
    [LibraryImport(Library, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static partial CudaResult cuMemcpyHtoDAsync(nint destination, void* source, nuint bytes, nint stream);
    [LibraryImport(Library, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static partial CudaResult cuMemcpyDtoHAsync(void* destination, nint source, nuint bytes, nint stream);
    [LibraryImport(Library, EntryPoint = "cuMemcpyDtoDAsync_v2")] public static partial CudaResult cuMemcpyDtoDAsync(nint destination, nint source, nuint bytes, nint stream);
    [LibraryImport(Library)] public static partial CudaResult cuMemHostAlloc(out nint pointer, nuint bytes, uint flags);
    [LibraryImport(Library)] public static partial CudaResult cuMemFreeHost(nint pointer);
    #endregion

    #region Streams and events
    [LibraryImport(Library)] public static partial CudaResult cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Library, EntryPoint = "cuStreamDestroy_v2")] public static partial CudaResult cuStreamDestroy(nint stream);
    [LibraryImport(Library)] public static partial CudaResult cuStreamSynchronize(nint stream);
    [LibraryImport(Library)] public static partial CudaResult cuEventCreate(out nint evt, uint flags);
    [LibraryImport(Library, EntryPoint = "cuEventDestroy_v2")] public static partial CudaResult cuEventDestroy(nint evt);
    [LibraryImport(Library)] public static partial CudaResult cuEventRecord(nint evt, nint stream);
    [LibraryImport(Library)] public static partial CudaResult cuEventSynchronize(nint evt);
    [LibraryImport(Library)] public static partial CudaResult cuEventElapsedTime(out float milliseconds, nint start, nint end);
    #endregion

    #region Graphs (stream capture)
    [LibraryImport(Library, EntryPoint = "cuStreamBeginCapture_v2")] public static partial CudaResult cuStreamBeginCapture(nint stream, StreamCaptureMode mode);
    [LibraryImport(Library)] public static partial CudaResult cuStreamEndCapture(nint stream, out nint graph);
    [LibraryImport(Library)] public static partial CudaResult cuGraphInstantiateWithFlags(out nint graphExec, nint graph, ulong flags);
    [LibraryImport(Library)] public static partial CudaResult cuGraphLaunch(nint graphExec, nint stream);
    [LibraryImport(Library, EntryPoint = "cuGraphExecUpdate_v2")] public static partial CudaResult cuGraphExecUpdate(nint graphExec, nint graph, out GraphExecUpdateResultInfo info);
    [LibraryImport(Library)] public static partial CudaResult cuGraphDestroy(nint graph);
    [LibraryImport(Library)] public static partial CudaResult cuGraphExecDestroy(nint graphExec);
    #endregion

    public enum DeviceAttribute
    {
        MaxThreadsPerBlock = 1,
        MaxSharedMemoryPerBlock = 8,
        WarpSize = 10,
        ClockRate = 13,
        MultiprocessorCount = 16,
        MemoryClockRate = 36,
        GlobalMemoryBusWidth = 37,
        L2CacheSize = 38,
        ComputeCapabilityMajor = 75,
        ComputeCapabilityMinor = 76,
        MaxSharedMemoryPerBlockOptin = 97,
        MemoryPoolsSupported = 115,
    }

    public enum FunctionAttribute
    {
        MaxDynamicSharedSizeBytes = 8,
    }

    public enum StreamCaptureMode
    {
        Global = 0,
        ThreadLocal = 1,
        Relaxed = 2,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct GraphExecUpdateResultInfo
    {
        public int Result;
        public nint ErrorNode;
        public nint ErrorFromNode;
    }
}
