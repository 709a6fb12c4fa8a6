using System.Numerics;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>Single-precision GEMM on row-major matrices; the workhorse behind linear, matmul and convolutions.</summary>
public static unsafe class CpuGemm
{
    /// <summary>
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C. Row-major; <paramref name="lda"/>, <paramref name="ldb"/>,
    /// <paramref name="ldc"/> are row strides in elements of the stored (untransposed) matrices. beta = 0 ignores C's contents.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, long lda, float* b, long ldb, float beta, float* c, long ldc)
    {
        CpuParallel.For(m, 16, (start, end) =>
        {
            for (long i = start; i < end; i++)
            {
                float* row = c + i * ldc;
                for (int j = 0; j < n; j++) row[j] = beta == 0 ? 0 : row[j] * beta;
                for (int p = 0; p < k; p++)
                {
                    float av = alpha * (transA ? a[p * lda + i] : a[i * lda + p]);
                    if (!transB)
                    {
                        float* brow = b + p * ldb;
                        int j = 0;
                        var vav = new Vector<float>(av);
                        for (; j <= n - Vector<float>.Count; j += Vector<float>.Count)
                        {
                            var acc = *(Vector<float>*)(row + j) + vav * *(Vector<float>*)(brow + j);
                            *(Vector<float>*)(row + j) = acc;
                        }
                        for (; j < n; j++) row[j] += av * brow[j];
                    }
                    else
                    {
                        for (int j = 0; j < n; j++) row[j] += av * b[j * ldb + p];
                    }
                }
            }
        });
    }
}
