using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cuda;

/// <summary>
/// A row-major <see cref="GemmCall"/> as the arguments of cublasGemmStridedBatchedEx, in cuBLAS's own (column-major)
/// terms: C[b] = op(A[b]) · op(B[b]) with C M×N, element (i, j) at C + i + j·Ldc, and op(A)(i, l) = A[i + l·Lda] for
/// "N" or A[l + i·Lda] for "T". A row-major product C = A·B is the column-major Cᵀ = Bᵀ·Aᵀ, and a row-major matrix with
/// unit column stride is, as stored, its own column-major transpose; so the call's B becomes cuBLAS's A and the other
/// way round, each read "N" (unit column stride) or "T" (unit row stride: a transposed view, Linear's [out, in] weight).
/// </summary>
internal readonly record struct CublasGemm(
    CuBlas.Operation TransA, CuBlas.Operation TransB, int M, int N, int K,
    nint A, int Lda, long StrideA, nint B, int Ldb, long StrideB, nint C, int Ldc, long StrideC,
    int BatchCount, CuBlas.DataType Type)
{
    /// <summary>
    /// The cuBLAS form of <paramref name="call"/>, or false where cuBLAS cannot express it: an operand with no unit
    /// stride, a leading dimension too small or too large, K = 0 (left to the kernel, which writes zeros plus bias), or
    /// a dtype other than f32, f16 and bf16. The bias is not part of it.
    /// </summary>
    public static bool TryCreate(in GemmCall call, out CublasGemm gemm)
    {
        gemm = default;
        if (call.K == 0 || !TryType(call.DType, out var type)
            || !TryColumnMajor(call.K, call.N, call.BRow, call.BCol, out var transA, out int lda)
            || !TryColumnMajor(call.M, call.K, call.ARow, call.ACol, out var transB, out int ldb)
            || !TryLeadingDimension(call.M == 1 ? call.N : call.CRow, call.N, out int ldc))
            return false;
        gemm = new CublasGemm(transA, transB, call.N, call.M, call.K, call.B, lda, call.BBatch, call.A, ldb, call.ABatch,
            call.C, ldc, call.CBatch, call.BatchCount, type);
        return true;
    }

    private static bool TryType(DType dtype, out CuBlas.DataType type)
    {
        (bool supported, type) = dtype switch
        {
            DType.F32 => (true, CuBlas.DataType.R32F),
            DType.F16 => (true, CuBlas.DataType.R16F),
            DType.BF16 => (true, CuBlas.DataType.R16BF),
            _ => (false, default),
        };
        return supported;
    }

    /// <summary>
    /// How cuBLAS reads the row-major X [rows, cols] as the column-major Xᵀ [cols, rows]: "N" with ld = the row stride
    /// when columns are unit-strided, "T" with ld = the column stride when rows are. Strides of size-1 dims are free.
    /// </summary>
    private static bool TryColumnMajor(int rows, int cols, long rowStride, long columnStride, out CuBlas.Operation op, out int ld)
    {
        op = CuBlas.Operation.N;
        if ((cols == 1 || columnStride == 1) && TryLeadingDimension(rows == 1 ? cols : rowStride, cols, out ld)) return true;
        op = CuBlas.Operation.T;
        if ((rows == 1 || rowStride == 1) && TryLeadingDimension(cols == 1 ? rows : columnStride, rows, out ld)) return true;
        ld = 0;
        return false;
    }

    /// <summary>cuBLAS needs max(1, extent) ≤ ld ≤ int.MaxValue.</summary>
    private static bool TryLeadingDimension(long stride, int extent, out int ld)
    {
        bool valid = stride >= Math.Max(1, extent) && stride <= int.MaxValue;
        ld = valid ? (int)stride : 0;
        return valid;
    }
}
