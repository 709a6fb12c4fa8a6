using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Interop.Cuda;

namespace MeLFusion.Native.Backends.Cuda;

/// <summary>
/// GEMM on cuBLAS (<see cref="CublasGemm"/> maps each call): f32 inputs compute in f32 (default math mode: no TF32),
/// f16 and bf16 inputs accumulate in f32. A bias is added by the bias_add_f32 epilogue kernel of kernels/gemm.cu. What
/// cuBLAS cannot express, or everything when libcublas is missing, runs on kernels/gemm.cu.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    /// <summary>Scratch for cuBLAS, set once so that it never allocates while a graph is captured (32 MiB: NVIDIA's Hopper advice).</summary>
    private const long BlasWorkspaceBytes = 32L << 20;

    private void CreateBlas()
    {
        CuBlas.Check(CuBlas.cublasCreate(out _blas), "cublasCreate");
        CuBlas.Check(CuBlas.cublasSetStream(_blas, _stream), "cublasSetStream");
        CuBlas.Check(CuBlas.cublasSetMathMode(_blas, CuBlas.MathMode.Default), "cublasSetMathMode");
        // Freed with the backend's other buffers when it is disposed.
        var workspace = Allocate(BlasWorkspaceBytes, "cuBLAS workspace");
        CuBlas.Check(CuBlas.cublasSetWorkspace_v2(_blas, workspace.Pointer, (nuint)BlasWorkspaceBytes), "cublasSetWorkspace");
    }

    protected override void Gemm(in GemmCall call)
    {
        if (_blas == 0 || !CublasGemm.TryCreate(call, out var g))
        {
            base.Gemm(call);
            return;
        }
        MakeCurrent();
        float alpha = 1, beta = 0;
        CuBlas.Check(CuBlas.cublasGemmStridedBatchedEx(_blas, g.TransA, g.TransB, g.M, g.N, g.K, &alpha,
            g.A, g.Type, g.Lda, g.StrideA, g.B, g.Type, g.Ldb, g.StrideB, &beta,
            g.C, g.Type, g.Ldc, g.StrideC, g.BatchCount, CuBlas.ComputeType.F32, CuBlas.DefaultAlgorithm),
            "cublasGemmStridedBatchedEx");
        if (call.Bias != 0) AddBias(call);
    }
}
