using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MeLFusion.Native.Interop.Cuda;

/// <summary>
/// <c>LibraryImport</c> bindings to cuBLAS (libcublas.so): strided-batched GEMM in f32, f16 and bf16 with f32
/// accumulation. Column-major as cuBLAS is; <c>CudaGemm</c> maps row-major calls onto it by swapping operands.
/// </summary>
public static unsafe partial class CuBlas
{
    public const string Library = "libcublas.so";

    public enum Status
    {
        Success = 0,
        NotInitialized = 1,
        AllocFailed = 3,
        InvalidValue = 7,
        ArchMismatch = 8,
        MappingError = 11,
        ExecutionFailed = 13,
        InternalError = 14,
        NotSupported = 15,
    }

    public enum Operation { N = 0, T = 1 }

    /// <summary>cudaDataType_t values used here.</summary>
    public enum DataType { R32F = 0, R16F = 2, R16BF = 14 }

    /// <summary>cublasComputeType_t.</summary>
    public enum ComputeType { F32 = 68, F32FastTF32 = 77 }

    public enum MathMode { Default = 0, TensorOp = 1, PedanticMath = 2, TF32TensorOp = 3, DisallowReducedPrecisionReduction = 16 }

    /// <summary>CUBLAS_GEMM_DEFAULT: let cuBLAS pick the algorithm.</summary>
    public const int DefaultAlgorithm = -1;

    /// <summary>
    /// The library's handle, or 0: libcublas.so (a development install), else the runtime sonames of CUDA 12 and 11.
    /// <see cref="NativeLibraries"/> resolves <see cref="Library"/> to it, so the bindings work with either.
    /// </summary>
    private static readonly Lazy<nint> s_handle = new(() =>
    {
        foreach (var name in new[] { Library, Library + ".12", Library + ".11" })
            if (NativeLibrary.TryLoad(name, out nint handle)) return handle;
        return 0;
    });

    static CuBlas() => NativeLibraries.Register(Library, () => s_handle.Value);

    public static bool IsAvailable => s_handle.Value != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(Status status, string call)
    {
        if (status != Status.Success) Throw(status, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(Status status, string call) =>
        throw new CudaException(call, "CUBLAS_STATUS_" + status.ToString().ToUpperInvariant(), "cuBLAS call failed");

    [LibraryImport(Library, EntryPoint = "cublasCreate_v2")] public static partial Status cublasCreate(out nint handle);
    [LibraryImport(Library, EntryPoint = "cublasDestroy_v2")] public static partial Status cublasDestroy(nint handle);
    [LibraryImport(Library, EntryPoint = "cublasSetStream_v2")] public static partial Status cublasSetStream(nint handle, nint stream);
    [LibraryImport(Library)] public static partial Status cublasSetMathMode(nint handle, MathMode mode);
    [LibraryImport(Library)] public static partial Status cublasSetWorkspace_v2(nint handle, nint workspace, nuint bytes);

    [LibraryImport(Library)]
    public static partial Status cublasGemmStridedBatchedEx(nint handle, Operation transA, Operation transB,
        int m, int n, int k, void* alpha,
        nint a, DataType aType, int lda, long strideA,
        nint b, DataType bType, int ldb, long strideB,
        void* beta, nint c, DataType cType, int ldc, long strideC,
        int batchCount, ComputeType computeType, int algorithm);
}
