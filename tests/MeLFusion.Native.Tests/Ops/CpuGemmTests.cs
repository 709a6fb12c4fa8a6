using MeLFusion.Native.Backends.Cpu;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>
/// CpuGemm against a naive float64 loop: every micro-kernel this CPU can run, odd sizes that leave partial tiles and
/// cross the MC/KC/NC block boundaries, all transposes, padded leading dimensions, alpha and beta.
/// </summary>
public unsafe class CpuGemmTests
{
    public static TheoryData<int> Kernels
    {
        get
        {
            var data = new TheoryData<int>();
            foreach (var kernel in Enum.GetValues<GemmKernel>())
                if (CpuGemm.IsSupported(kernel)) data.Add((int)kernel);
            return data;
        }
    }

    // (m, n, k): single elements, partial tiles of every kernel, a thin N that runs transposed, K beyond every depth
    // block (at most 512), M beyond every row block (at most 192) and N beyond every column block (at most 2048).
    private static readonly (int M, int N, int K)[] Sizes =
    [
        (1, 1, 1), (1, 37, 5), (37, 1, 5), (7, 13, 5), (12, 32, 16), (13, 33, 17), (33, 65, 17), (64, 64, 64),
        (97, 45, 600), (200, 70, 33), (3, 2100, 4),
    ];

    private static readonly (float Alpha, float Beta)[] Scalings = [(1, 0), (-0.5f, 1), (2, 0.25f)];

    [Theory]
    [MemberData(nameof(Kernels))]
    public void MatchesNaiveLoopForOddSizesTransposesAndScalings(int kernel)
    {
        var random = new Random(7);
        foreach (var (m, n, k) in Sizes)
            foreach (bool transA in new[] { false, true })
                foreach (bool transB in new[] { false, true })
                    foreach (var (alpha, beta) in Scalings)
                    {
                        var problem = new Problem(random, m, n, k, transA, transB, alpha, beta);
                        fixed (float* a = problem.A, b = problem.B, c = problem.C)
                            CpuGemm.Multiply((GemmKernel)kernel, m, n, k, alpha, MatrixView.RowMajor(a, problem.Lda, transA),
                                MatrixView.RowMajor(b, problem.Ldb, transB), beta, new MatrixView(c, problem.Ldc, 1), parallel: true);
                        problem.Verify($"{(GemmKernel)kernel} m={m} n={n} k={k} transA={transA} transB={transB} alpha={alpha} beta={beta}");
                    }
    }

    /// <summary>Problems big enough (≥ 2²² multiply-adds) to be split across cores: by rows, and by columns when rows are few.</summary>
    [Theory]
    [MemberData(nameof(Kernels))]
    public void ParallelSplitsMatchNaiveLoop(int kernel)
    {
        var random = new Random(3);
        foreach (var (m, n, k) in new[] { (150, 100, 300), (12, 1000, 400) })
            foreach (bool transposed in new[] { false, true })
            {
                var problem = new Problem(random, m, n, k, transposed, transposed, 2, 0.25f);
                fixed (float* a = problem.A, b = problem.B, c = problem.C)
                    CpuGemm.Multiply((GemmKernel)kernel, m, n, k, 2, MatrixView.RowMajor(a, problem.Lda, transposed),
                        MatrixView.RowMajor(b, problem.Ldb, transposed), 0.25f, new MatrixView(c, problem.Ldc, 1), parallel: true);
                problem.Verify($"{(GemmKernel)kernel} m={m} n={n} k={k} transposed={transposed}");
            }
    }

    [Fact]
    public void PublicSgemmMatchesNaiveLoop()
    {
        var random = new Random(11);
        foreach (var (m, n, k) in Sizes)
        {
            var problem = new Problem(random, m, n, k, transA: true, transB: false, alpha: 1.5f, beta: 0);
            fixed (float* a = problem.A, b = problem.B, c = problem.C)
                CpuGemm.Sgemm(true, false, m, n, k, 1.5f, a, problem.Lda, b, problem.Ldb, 0, c, problem.Ldc);
            problem.Verify($"sgemm m={m} n={n} k={k}");
        }
    }

    [Theory]
    [InlineData(9, 5, 7, 3)] // a tiny batch: runs on the calling thread
    [InlineData(40, 48, 40, 60)] // many small problems: parallel across the batch
    [InlineData(2, 200, 150, 140)] // large problems: in turn, each split across the cores
    public void StridedBatchedMatchesNaiveLoopWithASharedOperand(int batch, int m, int n, int k)
    {
        var random = new Random(batch);
        int lda = k + 2, ldb = n + 1, ldc = n + 3;
        long strideA = (long)m * lda, strideC = (long)m * ldc + 5;
        float[] a = Values(random, batch * strideA), b = Values(random, (long)k * ldb), c = Values(random, batch * strideC);
        float[] initial = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = c)
            CpuGemm.SgemmStridedBatched(false, false, m, n, k, 0.5f, pa, lda, strideA, pb, ldb, 0, 2, pc, ldc, strideC, batch);
        for (int item = 0; item < batch; item++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double product = 0.5 * a[item * strideA + i * lda + p] * b[p * ldb + j];
                        sum += product;
                        magnitude += Math.Abs(product);
                    }
                    long at = item * strideC + i * ldc + j;
                    sum += 2.0 * initial[at];
                    magnitude += Math.Abs(2.0 * initial[at]);
                    Assert.True(Math.Abs(c[at] - sum) <= Bound(k, magnitude),
                        $"batch item {item} C[{i},{j}] = {c[at]}, expected {sum}");
                }
    }

    [Fact]
    public void ZeroBetaOverwritesNaNAndZeroAlphaOrDepthLeavesOperandsUnread()
    {
        float[] a = [float.NaN, float.NaN, float.NaN, float.NaN];
        float[] b = [1, 2, 3, 4];
        float[] c = [float.NaN, 1, 2, float.NaN];
        fixed (float* pa = a, pb = b, pc = c)
        {
            CpuGemm.Sgemm(false, false, 2, 2, 2, 0, pa, 2, pb, 2, 3, pc, 2);
            Assert.Equal([float.NaN, 3, 6, float.NaN], c);
            CpuGemm.Sgemm(false, false, 2, 2, 2, 0, pa, 2, pb, 2, 0, pc, 2);
            Assert.Equal([0f, 0, 0, 0], c);
            c[0] = float.NaN;
            CpuGemm.Sgemm(false, false, 2, 2, 0, 1, pa, 2, pb, 2, 0, pc, 2);
            Assert.Equal([0f, 0, 0, 0], c);
        }
    }

    [Fact]
    public void RejectsNegativeSizesAndShortLeadingDimensions()
    {
        float[] buffer = new float[64];
        fixed (float* p = buffer)
        {
            float* q = p;
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(false, false, -1, 2, 2, 1, q, 2, q, 2, 0, q, 2));
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(false, false, 2, 3, 4, 1, q, 3, q, 3, 0, q, 3));
            Assert.Throws<ArgumentOutOfRangeException>(() => CpuGemm.Sgemm(true, false, 5, 3, 4, 1, q, 4, q, 3, 0, q, 3));
        }
    }

    /// <summary>
    /// Error bound of an f32 sum of k products plus the beta term, against an exact sum: about (k + 2)·2⁻²³ times
    /// the sum of magnitudes (twice the textbook γ bound), plus a hair for denormal-free rounding of tiny results.
    /// </summary>
    private static double Bound(int k, double magnitude) => 1e-6 + (k + 2) * 1.2e-7 * magnitude;

    private static float[] Values(Random random, long count)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++) values[i] = random.NextSingle() * 2 - 1;
        return values;
    }

    /// <summary>
    /// One problem with leading dimensions padded by a few elements. Padding of A and B holds NaN, so reading outside
    /// the matrices poisons the result; padding of C holds NaN too and must come back untouched.
    /// </summary>
    private sealed class Problem
    {
        private readonly int _m, _n, _k;
        private readonly bool _transA, _transB;
        private readonly float _alpha, _beta;
        private readonly float[] _initialC;

        public Problem(Random random, int m, int n, int k, bool transA, bool transB, float alpha, float beta)
        {
            (_m, _n, _k, _transA, _transB, _alpha, _beta) = (m, n, k, transA, transB, alpha, beta);
            Lda = (transA ? m : k) + 3;
            Ldb = (transB ? k : n) + 2;
            Ldc = n + 1;
            A = Matrix(random, transA ? k : m, transA ? m : k, Lda);
            B = Matrix(random, transB ? n : k, transB ? k : n, Ldb);
            C = Matrix(random, m, n, Ldc);
            // beta = 0 must ignore C entirely, NaNs included.
            if (beta == 0)
                for (int i = 0; i < m; i++) C[i * Ldc] = float.NaN;
            _initialC = (float[])C.Clone();
        }

        public int Lda { get; }
        public int Ldb { get; }
        public int Ldc { get; }
        public float[] A { get; }
        public float[] B { get; }
        public float[] C { get; }

        public void Verify(string what)
        {
            for (int i = 0; i < _m; i++)
            {
                for (int j = 0; j < _n; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int p = 0; p < _k; p++)
                    {
                        double product = (double)_alpha
                            * (_transA ? A[p * Lda + i] : A[i * Lda + p])
                            * (_transB ? B[j * Ldb + p] : B[p * Ldb + j]);
                        sum += product;
                        magnitude += Math.Abs(product);
                    }
                    if (_beta != 0)
                    {
                        sum += (double)_beta * _initialC[i * Ldc + j];
                        magnitude += Math.Abs((double)_beta * _initialC[i * Ldc + j]);
                    }
                    float actual = C[i * Ldc + j];
                    Assert.True(Math.Abs(actual - sum) <= Bound(_k, magnitude), $"{what}: C[{i},{j}] = {actual}, expected {sum}");
                }
                Assert.True(float.IsNaN(C[i * Ldc + _n]), $"{what}: padding after row {i} of C was written");
            }
        }

        private static float[] Matrix(Random random, int rows, int columns, int ld)
        {
            var values = new float[Math.Max(1, rows * ld)];
            Array.Fill(values, float.NaN);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < columns; j++)
                    values[i * ld + j] = random.NextSingle() * 2 - 1;
            return values;
        }
    }
}
