using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Interop;
using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cuda;

/// <summary>
/// The "cuda" backend: the kernels of kernels/*.cu on an NVIDIA GPU through the driver API. One device's primary
/// context, one non-blocking stream that every copy, launch and cuBLAS call is queued on, device memory from the
/// stream-ordered pool (cuMemAllocAsync) where the device has one, and one module per fatbin
/// (<see cref="KernelFatbins"/>), with functions looked up by name once. Every op binding comes from
/// <see cref="CudaKernelBackend"/>, shared with the cuda-emulated backend that tests it; only the driver calls here are
/// specific. MatMul and Linear run on cuBLAS (strided-batched, f32 compute) where it is installed and can express the
/// layout, else on kernels/gemm.cu. <see cref="CaptureGraph"/> records a whole <see cref="ExecutionPlan"/> run as a CUDA
/// graph. Every driver failure throws a <see cref="CudaException"/> naming the call.
/// </summary>
public sealed unsafe partial class CudaBackend : CudaKernelBackend
{
    /// <summary>Dynamic shared memory a kernel may use without opting in (cuFuncSetAttribute).</summary>
    private const uint DefaultSharedLimit = 48 * 1024;

    /// <summary>CU_STREAM_NON_BLOCKING: no implicit synchronisation with the legacy default stream.</summary>
    private const uint NonBlockingStream = 1;

    private static readonly Lazy<bool> s_supported = new(() =>
    {
        try
        {
            CudaDriver.EnsureInitialized();
            return true;
        }
        catch (CudaUnavailableException)
        {
            return false;
        }
    });

    [ThreadStatic] private static nint t_currentContext;

    private readonly int _device;
    private readonly nint _context;
    private readonly nint _stream;
    private readonly bool _memoryPools;
    private readonly List<nint> _modules = [];
    private readonly Dictionary<string, KernelFunction> _functions = new(StringComparer.Ordinal);
    private readonly HashSet<CudaBuffer> _liveBuffers = [];
    private nint _blas;
    private bool _capturing;
    private bool _disposed;

    /// <summary>A kernel's function handle and the dynamic shared memory it has been allowed so far.</summary>
    private sealed class KernelFunction(nint handle)
    {
        public nint Handle { get; } = handle;
        public uint SharedLimit { get; set; } = DefaultSharedLimit;
    }

    /// <summary>Set to 0 to run MatMul and Linear on kernels/gemm.cu even where cuBLAS is installed.</summary>
    public const string CublasVariable = "MELFUSION_CUBLAS";

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/>. <paramref name="useCublas"/> null means: cuBLAS when it is installed, unless
    /// $MELFUSION_CUBLAS is 0. Throws <see cref="CudaUnavailableException"/> on a machine without a usable NVIDIA GPU (or
    /// with one older than sm_80, which the fatbins do not cover), and <see cref="FileNotFoundException"/> when the
    /// kernel fatbins have not been built.
    /// </summary>
    public CudaBackend(int ordinal = 0, bool? useCublas = null)
    {
        CudaDriver.EnsureInitialized();
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out int count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal, $"cuda: there are {count} GPU(s)");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out _device, ordinal), "cuDeviceGet");
        Device = CudaDevice.Query(ordinal);
        if (Device.ComputeMajor < 8)
            throw new CudaUnavailableException(
                $"{Device.Name} has compute capability {Device.ComputeMajor}.{Device.ComputeMinor}; the kernels are built for 8.0 (Ampere) and newer; use --device cpu or cuda-emulated");
        var fatbins = KernelFatbins.Find();

        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out _context, _device), "cuDevicePrimaryCtxRetain");
        try
        {
            MakeCurrent();
            CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int pools, CudaDriver.DeviceAttribute.MemoryPoolsSupported, _device),
                "cuDeviceGetAttribute(MemoryPoolsSupported)");
            _memoryPools = pools != 0;
            CudaDriver.Check(CudaDriver.cuStreamCreate(out _stream, NonBlockingStream), "cuStreamCreate");
            foreach (var fatbin in fatbins) LoadModule(fatbin);
            if (useCublas == true && !CuBlas.IsAvailable)
                throw new CudaUnavailableException($"cuBLAS ({CuBlas.Library}) cannot be loaded");
            if ((useCublas ?? Environment.GetEnvironmentVariable(CublasVariable) != "0") && CuBlas.IsAvailable) CreateBlas();
        }
        catch
        {
            ReleaseResources();
            throw;
        }
    }

    /// <summary>True when an NVIDIA driver and at least one GPU are present (the constructor may still refuse an old GPU).</summary>
    public static bool IsSupported => s_supported.Value;

    public override string Name => "cuda";

    /// <summary>The GPU this backend runs on.</summary>
    public CudaDevice Device { get; }

    /// <summary>True when MatMul and Linear run on cuBLAS (else on kernels/gemm.cu).</summary>
    public bool UsesCublas => _blas != 0;

    /// <summary>The stream all work is queued on (a CUstream), for interop with other CUDA code.</summary>
    public nint Stream => _stream;

    public override DeviceBuffer Allocate(long bytes, string purpose)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ThrowIfCapturing("allocate memory");
        MakeCurrent();
        nuint size = (nuint)Math.Max(bytes, 1);
        nint pointer;
        var result = _memoryPools ? CudaDriver.cuMemAllocAsync(out pointer, size, _stream) : CudaDriver.cuMemAlloc(out pointer, size);
        if (result == CudaResult.OutOfMemory)
            throw new OutOfMemoryException($"cuda: cannot allocate {bytes / 1048576.0:F1} MiB for {purpose} on {Device.Name}");
        CudaDriver.Check(result, _memoryPools ? "cuMemAllocAsync" : "cuMemAlloc");
        var buffer = new CudaBuffer(this, pointer, bytes);
        _liveBuffers.Add(buffer);
        return buffer;
    }

    /// <summary>Queues the copy; a pageable source is staged before the call returns, so it may be reused at once.</summary>
    public override void CopyFromHost(ReadOnlySpan<byte> source, nint destination)
    {
        if (source.IsEmpty) return;
        ThrowIfCapturing("copy from the host");
        MakeCurrent();
        fixed (byte* s = source)
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(destination, s, (nuint)source.Length, _stream), "cuMemcpyHtoDAsync");
    }

    /// <summary>Waits for the work queued before it, then copies.</summary>
    public override void CopyToHost(nint source, Span<byte> destination)
    {
        if (destination.IsEmpty) return;
        ThrowIfCapturing("copy to the host");
        MakeCurrent();
        fixed (byte* d = destination)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(d, source, (nuint)destination.Length, _stream), "cuMemcpyDtoHAsync");
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        }
    }

    /// <summary>
    /// Queues a kernel of the loaded fatbins. Parameter sizes are not checked here (the driver cannot tell them); every
    /// launch configuration comes from <see cref="CudaKernelBackend"/>, whose argument lists the cuda-emulated backend
    /// checks against the kernels' signatures in the tests.
    /// </summary>
    public override void Launch(string kernel, Dim3 grid, Dim3 block, uint sharedBytes, params ReadOnlySpan<LaunchArg> args)
    {
        MakeCurrent();
        nint function = Function(kernel, sharedBytes);
        void** parameters = stackalloc void*[Math.Max(args.Length, 1)];
        fixed (LaunchArg* values = args)
        {
            KernelParams.Point(values, args.Length, parameters);
            var result = CudaDriver.cuLaunchKernel(function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes,
                _stream, parameters, null);
            if (result != CudaResult.Success) CudaDriver.Check(result, $"cuLaunchKernel({kernel}, grid {grid}, block {block}, {sharedBytes} B shared)");
        }
    }

    /// <summary>Waits for the stream; does nothing while a graph is being captured (the plan's own synchronisation).</summary>
    public override void Synchronize()
    {
        if (_capturing) return;
        base.Synchronize();
    }

    protected override void WaitForDevice()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
    }

    protected override void Dispose(bool disposing)
    {
        if (_disposed) return;
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(_stream), "cuStreamSynchronize");
        base.Dispose(disposing);
        ReleaseResources();
    }

    /// <summary>Frees every buffer still allocated, then what the constructor acquired, in reverse order.</summary>
    private void ReleaseResources()
    {
        if (_blas != 0) CuBlas.Check(CuBlas.cublasDestroy(_blas), "cublasDestroy");
        _blas = 0;
        foreach (var buffer in _liveBuffers.ToArray()) buffer.Dispose();
        foreach (var module in _modules) CudaDriver.Check(CudaDriver.cuModuleUnload(module), "cuModuleUnload");
        _modules.Clear();
        _functions.Clear();
        if (_stream != 0) CudaDriver.Check(CudaDriver.cuStreamDestroy(_stream), "cuStreamDestroy");
        _disposed = true;
        if (t_currentContext == _context) t_currentContext = 0;
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRelease(_device), "cuDevicePrimaryCtxRelease");
    }

    /// <summary>Makes this backend's context current on the calling thread (a thread-local check on the hot path).</summary>
    private void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (t_currentContext == _context) return;
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
        t_currentContext = _context;
    }

    private void ThrowIfCapturing(string what)
    {
        if (_capturing)
            throw new InvalidOperationException($"cuda: cannot {what} while a CUDA graph is being captured; a captured plan run may only launch kernels");
    }

    private void LoadModule(string path)
    {
        byte[] image = File.ReadAllBytes(path);
        nint module;
        CudaResult result;
        fixed (byte* data = image) result = CudaDriver.cuModuleLoadData(out module, data);
        if (result == CudaResult.NoBinaryForGpu)
            throw new CudaUnavailableException(
                $"{path} has no code for {Device.Name} (sm_{Device.ComputeMajor}{Device.ComputeMinor}); rebuild the fatbins for it");
        CudaDriver.Check(result, $"cuModuleLoadData({Path.GetFileName(path)})");
        _modules.Add(module);
    }

    /// <summary>The kernel's function (searched in every module once), allowed <paramref name="sharedBytes"/> of dynamic shared memory.</summary>
    private nint Function(string kernel, uint sharedBytes)
    {
        if (!_functions.TryGetValue(kernel, out var function))
        {
            foreach (var module in _modules)
            {
                var result = CudaDriver.cuModuleGetFunction(out nint handle, module, kernel);
                if (result == CudaResult.NotFound) continue;
                CudaDriver.Check(result, $"cuModuleGetFunction({kernel})");
                function = new KernelFunction(handle);
                break;
            }
            if (function is null)
                throw new KernelLaunchException(kernel, (int)CudaResult.NotFound,
                    $"unknown kernel '{kernel}': no loaded fatbin defines it (rebuild build/kernels)");
            _functions.Add(kernel, function);
        }
        if (sharedBytes > function.SharedLimit)
        {
            CudaDriver.Check(CudaDriver.cuFuncSetAttribute(function.Handle, CudaDriver.FunctionAttribute.MaxDynamicSharedSizeBytes,
                (int)sharedBytes), $"cuFuncSetAttribute({kernel}, MaxDynamicSharedSizeBytes, {sharedBytes})");
            function.SharedLimit = sharedBytes;
        }
        return function.Handle;
    }

    /// <summary>Memory of this backend: freed in stream order when it came from the pool; disposing the backend frees it too.</summary>
    private sealed class CudaBuffer(CudaBackend backend, nint pointer, long bytes) : DeviceBuffer(pointer, bytes)
    {
        protected override void Free(nint pointer)
        {
            if (!backend._liveBuffers.Remove(this)) return;
            backend.MakeCurrent();
            if (backend._memoryPools)
                CudaDriver.Check(CudaDriver.cuMemFreeAsync(pointer, backend._stream), "cuMemFreeAsync");
            else
                CudaDriver.Check(CudaDriver.cuMemFree(pointer), "cuMemFree");
        }
    }
}
