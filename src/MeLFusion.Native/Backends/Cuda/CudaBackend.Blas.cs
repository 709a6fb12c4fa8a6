using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cuda;

/// <summary>
/// GEMM on cuBLAS. cuBLAS is column-major; a row-major C = A·B is the column-major Cᵀ = Bᵀ·Aᵀ, and a row-major matrix
/// with unit column stride is, as stored, the column-major transpose of itself. So each GemmCall becomes one
/// cublasGemmStridedBatchedEx with the operands swapped and each operand read "N" (unit column stride) or "T" (unit row
/// stride, e.g. a transposed view or Linear's [out, in] weight); f32 inputs compute in f32 (no TF32), f16 and bf16
/// inputs accumulate in f32. A bias is added by the bias_add_f32 epilogue kernel. Layouts cuBLAS cannot express (no unit
/// stride, leading dimension too small) and K = 0 go to kernels/gemm.cu.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    /// <summary>Scratch for cuBLAS, set once so that it never allocates while a graph is captured (32 MiB: NVIDIA's Hopper advice).</summary>
    private const long BlasWorkspaceBytes = 32L << 20;

    private void CreateBlas()
    {
        CuBlas.Check(CuBlas.cublasCreate(out _blas), "cublasCreate");
        CuBlas.Check(CuBlas.cublasSetStream(_blas, _stream), "cublasSetStream");
        // Default math: f32 GEMMs with f32 compute are exact f32, not TF32.
        CuBlas.Check(CuBlas.cublasSetMathMode(_blas, CuBlas.MathMode.Default), "cublasSetMathMode");
        _blasWorkspace = Allocate(BlasWorkspaceBytes, "cuBLAS workspace");
        CuBlas.Check(CuBlas.cublasSetWorkspace_v2(_blas, _blasWorkspace.Pointer, (nuint)BlasWorkspaceBytes), "cublasSetWorkspace");
    }

    protected override void Gemm(in GemmCall call)
    {
        if (_blas == 0 || call.K == 0 || !TryBlasType(call.DType, out var type)
            || !TryColumnMajor(call.M, call.K, call.ARow, call.ACol, out var opA, out int lda)
            || !TryColumnMajor(call.K, call.N, call.BRow, call.BCol, out var opB, out int ldb)
            || !TryLeadingDimension(call.M == 1 ? call.N : call.CRow, call.N, out int ldc))
        {
            base.Gemm(call);
            return;
        }
        MakeCurrent();
        float alpha = 1, beta = 0;
        CuBlas.Check(CuBlas.cublasGemmStridedBatchedEx(_blas, opB, opA, call.N, call.M, call.K, &alpha,
            call.B, type, ldb, call.BBatch, call.A, type, lda, call.ABatch, &beta,
            call.C, type, ldc, call.CBatch, call.BatchCount, CuBlas.ComputeType.F32, CuBlas.DefaultAlgorithm),
            "cublasGemmStridedBatchedEx");
        if (call.Bias != 0)
            LaunchElementwise("bias_add_f32", (long)call.BatchCount * call.M * call.N,
                call.C, call.Bias, call.BatchCount, call.M, call.N, call.CRow, call.CBatch);
    }

    private static bool TryBlasType(DType dtype, out CuBlas.DataType type)
    {
        type = dtype switch
        {
            DType.F32 => CuBlas.DataType.R32F,
            DType.F16 => CuBlas.DataType.R16F,
            DType.BF16 => CuBlas.DataType.R16BF,
            _ => (CuBlas.DataType)(-1),
        };
        return type >= 0;
    }

    /// <summary>
    /// How cuBLAS reads the row-major X [rows, cols] (strides <paramref name="rowStride"/>, <paramref name="columnStride"/>)
    /// as the column-major Xᵀ [cols, rows]: "N" with ld = the row stride when columns are unit-strided, "T" with ld = the
    /// column stride when rows are. Strides of size-1 dims are free.
    /// </summary>
    private static bool TryColumnMajor(int rows, int cols, long rowStride, long columnStride, out CuBlas.Operation op, out int ld)
    {
        if ((cols == 1 || columnStride == 1) && TryLeadingDimension(rows == 1 ? cols : rowStride, cols, out ld))
        {
            op = CuBlas.Operation.N;
            return true;
        }
        if ((rows == 1 || rowStride == 1) && TryLeadingDimension(cols == 1 ? rows : columnStride, rows, out ld))
        {
            op = CuBlas.Operation.T;
            return true;
        }
        op = default;
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
