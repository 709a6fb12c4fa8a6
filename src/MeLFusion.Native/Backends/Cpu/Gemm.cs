using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>A matrix operand in host memory: element (i, j) lives at <c>Data[i * RowStride + j * ColumnStride]</c>.</summary>
internal readonly unsafe struct MatrixView(float* data, long rowStride, long columnStride)
{
    public float* Data { get; } = data;
    public long RowStride { get; } = rowStride;
    public long ColumnStride { get; } = columnStride;

    /// <summary>The same memory read as the transposed matrix.</summary>
    public MatrixView Transposed => new(Data, ColumnStride, RowStride);

    public MatrixView Offset(long elements) => new(Data + elements, RowStride, ColumnStride);

    /// <summary>A row-major matrix with row stride <paramref name="ld"/>, or its transpose.</summary>
    public static MatrixView RowMajor(float* data, long ld, bool transposed) =>
        transposed ? new(data, 1, ld) : new(data, ld, 1);
}

/// <summary>Which micro-kernel a GEMM runs on; <see cref="CpuGemm.BestKernel"/> is the fastest this CPU supports.</summary>
internal enum GemmKernel
{
    Scalar,
    Vector128,
    Avx2,
    Avx512,
}

/// <summary>
/// Single-precision GEMM on host memory, the workhorse behind linear, matmul, attention and convolutions.
/// BLIS-style: for each NC-wide column block and KC-deep slice, B is packed into NR-wide micro-panels shared by all
/// threads; each task packs an MC-tall block of A (alpha folded in) into MR-tall micro-panels and sweeps a
/// register-blocked MR×NR micro-kernel over it, every B micro-panel against the whole A block. Packed panels are read
/// sequentially from L1/L2 and the kernel does nothing but FMAs on registers (on Zen 4, about 97% of the FMA peak on
/// its own and about 90% per core over a whole 2048³ GEMM). Edge tiles run the same kernel on zero-padded panels into a scratch tile. Packing
/// buffers come from a pool, so steady-state calls allocate nothing.
/// </summary>
public static unsafe class CpuGemm
{
    /// <summary>Problems below this many multiply-adds run on the calling thread: splitting would cost more than it saves.</summary>
    private const long ParallelWork = 1L << 22;

    /// <summary>Smallest share of multiply-adds worth one parallel task.</summary>
    private const long TaskWork = 1L << 20;

    /// <summary>Most tasks per worker and block: enough for fine load balance, few enough to keep A blocks tall.</summary>
    private const int MaxTasksPerWorker = 16;

    internal static GemmKernel BestKernel { get; } =
        Avx512Kernel.IsSupported ? GemmKernel.Avx512
        : Avx2Kernel.IsSupported ? GemmKernel.Avx2
        : Vector128Kernel.IsSupported ? GemmKernel.Vector128
        : GemmKernel.Scalar;

    internal static bool IsSupported(GemmKernel kernel) => kernel switch
    {
        GemmKernel.Avx512 => Avx512Kernel.IsSupported,
        GemmKernel.Avx2 => Avx2Kernel.IsSupported,
        GemmKernel.Vector128 => Vector128Kernel.IsSupported,
        _ => true,
    };

    /// <summary>
    /// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C. Row-major; <paramref name="lda"/>, <paramref name="ldb"/>,
    /// <paramref name="ldc"/> are row strides in elements of the stored (untransposed) matrices. beta = 0 ignores C's
    /// contents (NaNs included); alpha = 0 or k = 0 leaves A and B unread. Runs on all cores.
    /// </summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, long lda, float* b, long ldb, float beta, float* c, long ldc)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        Multiply(BestKernel, m, n, k, alpha, MatrixView.RowMajor(a, lda, transA), MatrixView.RowMajor(b, ldb, transB),
            beta, new MatrixView(c, ldc, 1), parallel: true);
    }

    /// <summary>
    /// <paramref name="batchCount"/> independent <see cref="Sgemm"/>s; problem i reads A at a + i·strideA, B at
    /// b + i·strideB and writes C at c + i·strideC. A stride of 0 shares that operand across the batch (a weight).
    /// Small problems run in parallel across the batch, large ones one after another, each on all cores.
    /// </summary>
    public static void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, long lda, long strideA, float* b, long ldb, long strideB, float beta, float* c, long ldc, long strideC,
        int batchCount)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        ArgumentOutOfRangeException.ThrowIfNegative(batchCount);
        MultiplyBatched(BestKernel, batchCount, m, n, k, alpha, MatrixView.RowMajor(a, lda, transA), strideA,
            MatrixView.RowMajor(b, ldb, transB), strideB, beta, new MatrixView(c, ldc, 1), strideC);
    }

    private static void Validate(bool transA, bool transB, int m, int n, int k, long lda, long ldb, long ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"sgemm: negative size m={m} n={n} k={k}");
        if (lda < Math.Max(1, transA ? m : k) || ldb < Math.Max(1, transB ? k : n) || ldc < Math.Max(1, n))
            throw new ArgumentOutOfRangeException(nameof(lda),
                $"sgemm: leading dimensions lda={lda} ldb={ldb} ldc={ldc} too small for m={m} n={n} k={k} (transA={transA}, transB={transB})");
    }

    /// <summary>
    /// The strided core under every entry point: C = alpha · A[m×k] · B[k×n] + beta · C for arbitrary element strides
    /// (a transposed or permuted operand is just a view). C must not overlap A or B.
    /// </summary>
    internal static void Multiply(GemmKernel kernel, int m, int n, int k, float alpha, MatrixView a, MatrixView b,
        float beta, MatrixView c, bool parallel)
    {
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0)
        {
            Scale(c, m, n, beta);
            return;
        }
        var problem = new Problem(m, n, k, alpha, a, b, beta, c);
        switch (kernel)
        {
            case GemmKernel.Avx512: Driver<Avx512Kernel>.Run(problem, parallel); break;
            case GemmKernel.Avx2: Driver<Avx2Kernel>.Run(problem, parallel); break;
            case GemmKernel.Vector128: Driver<Vector128Kernel>.Run(problem, parallel); break;
            default: Driver<ScalarKernel>.Run(problem, parallel); break;
        }
    }

    /// <summary>Strided batch of <see cref="Multiply"/>; element offsets of problem i are i times the strides.</summary>
    internal static void MultiplyBatched(GemmKernel kernel, int batchCount, int m, int n, int k, float alpha,
        MatrixView a, long strideA, MatrixView b, long strideB, float beta, MatrixView c, long strideC)
    {
        if (batchCount <= 0 || m == 0 || n == 0) return;
        long work = (long)m * n * Math.Max(k, 1);
        if (work >= ParallelWork || work * batchCount < ParallelWork)
        {
            // Problems big enough to split run in turn, each across the cores; a tiny batch runs here.
            for (long i = 0; i < batchCount; i++)
                Multiply(kernel, m, n, k, alpha, a.Offset(i * strideA), b.Offset(i * strideB), beta, c.Offset(i * strideC), parallel: true);
            return;
        }
        int perTask = (int)Math.Min(batchCount, Math.Max(1, TaskWork / work));
        RunTasks((batchCount + perTask - 1) / perTask, task =>
        {
            for (long i = (long)task * perTask; i < Math.Min(batchCount, (task + 1L) * perTask); i++)
                Multiply(kernel, m, n, k, alpha, a.Offset(i * strideA), b.Offset(i * strideB), beta, c.Offset(i * strideC), parallel: false);
        });
    }

    /// <summary>
    /// Calls <paramref name="task"/>(t) for every t in [0, <paramref name="count"/>) on all cores. Tasks are handed out
    /// one at a time, so a core held up by other work (or woken late) delays the end by at most its current task.
    /// </summary>
    private static void RunTasks(int count, Action<int> task)
    {
        int next = -1;
        CpuParallel.For(Math.Min(CpuParallel.Workers, count), 1, (_, _) =>
        {
            for (int t; (t = Interlocked.Increment(ref next)) < count;) task(t);
        });
    }

    /// <summary>C = beta · C, where beta = 0 clears C (NaNs included).</summary>
    private static void Scale(MatrixView c, int m, int n, float beta)
    {
        if (beta == 1) return;
        for (long i = 0; i < m; i++)
        {
            float* row = c.Data + i * c.RowStride;
            for (long j = 0; j < n; j++)
            {
                float* element = row + j * c.ColumnStride;
                *element = beta == 0 ? 0 : beta * *element;
            }
        }
    }

    private readonly record struct Problem(int M, int N, int K, float Alpha, MatrixView A, MatrixView B, float Beta, MatrixView C);

    /// <summary>A register-blocked micro-kernel and the cache blocking that suits it.</summary>
    private interface IMicroKernel
    {
        static abstract bool IsSupported { get; }
        /// <summary>MR: rows of C per tile; A micro-panels are this tall.</summary>
        static abstract int Rows { get; }
        /// <summary>NR: columns of C per tile; B micro-panels are this wide.</summary>
        static abstract int Columns { get; }
        /// <summary>MC: most rows of A packed at once (the block that lives in L2); a multiple of <see cref="Rows"/>.</summary>
        static abstract int RowBlock { get; }
        /// <summary>KC: most depth packed at once.</summary>
        static abstract int DepthBlock { get; }
        /// <summary>NC: most columns of B packed at once; a multiple of <see cref="Columns"/>.</summary>
        static abstract int ColumnBlock { get; }

        /// <summary>
        /// C[Rows×Columns] = Σₚ a[p]·b[p] + beta · C over <paramref name="depth"/> steps of a packed A micro-panel
        /// (Rows floats per step) and B micro-panel (Columns floats per step); C rows are <paramref name="ldc"/> apart.
        /// beta = 0 does not read C.
        /// </summary>
        static abstract void Multiply(int depth, float* a, float* b, float* c, long ldc, float beta);
    }

    /// <summary>The blocked loops around one micro-kernel, specialised per kernel by the JIT.</summary>
    private static class Driver<TKernel> where TKernel : struct, IMicroKernel
    {
        public static void Run(Problem problem, bool parallel)
        {
            int mr = TKernel.Rows, nr = TKernel.Columns;
            // A thin N pads to NR columns per tile; computing Cᵀ = Bᵀ·Aᵀ instead pads to MR when that wastes less.
            if (Padded(problem.N, mr) * Padded(problem.M, nr) < Padded(problem.M, mr) * Padded(problem.N, nr))
                problem = new Problem(problem.N, problem.M, problem.K, problem.Alpha, problem.B.Transposed,
                    problem.A.Transposed, problem.Beta, problem.C.Transposed);

            int m = problem.M, n = problem.N, k = problem.K;
            int kcMax = Balanced(k, TKernel.DepthBlock, 1);
            int ncMax = Balanced(n, TKernel.ColumnBlock, nr);
            int workers = CpuParallel.Workers;
            // Many small tasks per block, handed out one at a time (see RunTasks).
            int tasks = parallel && (long)m * n * k >= ParallelWork && workers > 1
                ? (int)Math.Clamp((long)m * ncMax * kcMax / TaskWork, workers, MaxTasksPerWorker * workers)
                : 1;
            // Split rows first (each task packs its own A block); split columns only when rows run out.
            int rowPanels = (m + mr - 1) / mr;
            int rowTasks = Math.Min(tasks, rowPanels);
            int rowBlock = Balanced(Math.Min(m, (rowPanels + rowTasks - 1) / rowTasks * mr), TKernel.RowBlock, mr);

            var packedB = PackBuffer.RentB((long)kcMax * ncMax);
            try
            {
                for (int jc = 0; jc < n; jc += ncMax)
                {
                    int nc = Math.Min(ncMax, n - jc);
                    int columnPanels = (nc + nr - 1) / nr;
                    int columnTasks = Math.Clamp(tasks / rowTasks, 1, columnPanels);
                    for (int pc = 0; pc < k; pc += kcMax)
                    {
                        var block = new Block(jc, nc, pc, Math.Min(kcMax, k - pc), pc == 0 ? problem.Beta : 1,
                            packedB.Data, rowTasks, rowBlock, columnTasks);
                        if (rowTasks * columnTasks == 1)
                        {
                            PackB(problem.B, block, 0, columnPanels);
                            Compute(problem, block, 0);
                        }
                        else
                        {
                            var local = problem;
                            CpuParallel.For(columnPanels, Math.Max(1, 8192 / ((long)block.Depth * nr)),
                                (start, end) => PackB(local.B, block, (int)start, (int)end));
                            RunTasks(rowTasks * columnTasks, t => Compute(local, block, t));
                        }
                    }
                }
            }
            finally
            {
                PackBuffer.ReturnB(packedB);
            }
        }

        /// <summary>
        /// One NC×KC step: the B block [Depth × Width] at (DepthStart, ColumnStart), already packed at PackedB, and
        /// its tasks: RowTasks × ColumnTasks near-equal shares of the row panels and B micro-panels.
        /// </summary>
        private readonly struct Block(int columnStart, int width, int depthStart, int depth, float beta,
            float* packedB, int rowTasks, int rowBlock, int columnTasks)
        {
            public int ColumnStart { get; } = columnStart;
            public int Width { get; } = width;
            public int DepthStart { get; } = depthStart;
            public int Depth { get; } = depth;
            public float Beta { get; } = beta;
            public float* PackedB { get; } = packedB;
            public int RowTasks { get; } = rowTasks;
            /// <summary>Rows of A packed at once (MC), a multiple of MR.</summary>
            public int RowBlock { get; } = rowBlock;
            public int ColumnTasks { get; } = columnTasks;
        }

        /// <summary>Packs B micro-panels [start, end) of the block: panel j holds columns j·NR.. as Depth rows of NR.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void PackB(MatrixView b, Block block, int start, int end)
        {
            int nr = TKernel.Columns;
            for (int panel = start; panel < end; panel++)
            {
                int column = panel * nr;
                PackPanel(b.Data + block.DepthStart * b.RowStride + (block.ColumnStart + column) * b.ColumnStride,
                    b.ColumnStride, b.RowStride, Math.Min(nr, block.Width - column), nr, block.Depth, 1,
                    block.PackedB + (long)panel * block.Depth * nr);
            }
        }

        /// <summary>Task t: packs its rows of A block by block and sweeps the micro-kernel over its B micro-panels.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Compute(in Problem problem, in Block block, int task)
        {
            int mr = TKernel.Rows, nr = TKernel.Columns;
            int rowPanels = (problem.M + mr - 1) / mr, columnPanels = (block.Width + nr - 1) / nr;
            int rowTask = task / block.ColumnTasks, columnTask = task % block.ColumnTasks;
            int rowStart = Share(rowTask, rowPanels, block.RowTasks) * mr;
            int rowEnd = Math.Min(problem.M, Share(rowTask + 1, rowPanels, block.RowTasks) * mr);
            int panelStart = Share(columnTask, columnPanels, block.ColumnTasks);
            int panelEnd = Share(columnTask + 1, columnPanels, block.ColumnTasks);
            int depth = block.Depth;
            var a = problem.A;
            var c = problem.C;
            bool unitColumns = c.ColumnStride == 1;
            float* edge = stackalloc float[TKernel.Rows * TKernel.Columns];
            var packedA = PackBuffer.RentA((long)block.RowBlock * depth);
            try
            {
                for (int ic = rowStart; ic < rowEnd; ic += block.RowBlock)
                {
                    int mc = Math.Min(block.RowBlock, rowEnd - ic);
                    for (int row = 0; row < mc; row += mr)
                        PackPanel(a.Data + (ic + row) * a.RowStride + block.DepthStart * a.ColumnStride,
                            a.RowStride, a.ColumnStride, Math.Min(mr, mc - row), mr, depth, problem.Alpha,
                            packedA.Data + (long)row * depth);

                    for (int panel = panelStart; panel < panelEnd; panel++)
                    {
                        int column = panel * nr;
                        int columns = Math.Min(nr, block.Width - column);
                        float* packedB = block.PackedB + (long)panel * depth * nr;
                        for (int row = 0; row < mc; row += mr)
                        {
                            int rows = Math.Min(mr, mc - row);
                            float* target = c.Data + (ic + row) * c.RowStride + (block.ColumnStart + column) * c.ColumnStride;
                            float* panelA = packedA.Data + (long)row * depth;
                            if (rows == mr && columns == nr && unitColumns)
                            {
                                TKernel.Multiply(depth, panelA, packedB, target, c.RowStride, block.Beta);
                            }
                            else
                            {
                                TKernel.Multiply(depth, panelA, packedB, edge, nr, 0);
                                AccumulateTile(edge, nr, rows, columns, target, c.RowStride, c.ColumnStride, block.Beta);
                            }
                        }
                    }
                }
            }
            finally
            {
                PackBuffer.ReturnA(packedA);
            }
        }
    }

    /// <summary>Start of part <paramref name="part"/> when <paramref name="total"/> items are cut into <paramref name="parts"/> near-equal parts.</summary>
    private static int Share(int part, int total, int parts) => (int)((long)part * total / parts);

    /// <summary>Rounds <paramref name="size"/> up to a multiple of <paramref name="multiple"/>.</summary>
    private static long Padded(int size, int multiple) => (size + multiple - 1L) / multiple * multiple;

    /// <summary>
    /// Block size for cutting <paramref name="total"/> into blocks of at most about <paramref name="maxBlock"/>:
    /// equal blocks (a multiple of <paramref name="multiple"/>), so that no block is a sliver.
    /// </summary>
    private static int Balanced(int total, int maxBlock, int multiple)
    {
        int blocks = (total + maxBlock - 1) / maxBlock;
        return (int)Padded((total + blocks - 1) / blocks, multiple);
    }

    /// <summary>
    /// Packs one micro-panel: dst[p·width + l] = scale · src[l·laneStride + p·depthStride] for the first
    /// <paramref name="lanes"/> lanes and zero for the rest up to <paramref name="width"/>. A panels have rows as
    /// lanes, B panels columns. Unit lane stride copies rows of lanes; unit depth stride (row-major A, transposed B)
    /// transposes 4×4 blocks in registers so that four source rows stream at once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackPanel(float* src, long laneStride, long depthStride, int lanes, int width, int depth,
        float scale, float* dst)
    {
        if (laneStride == 1)
        {
            for (int p = 0; p < depth; p++)
            {
                // Rows of a wide matrix are far apart: ask for a row well ahead of the copy (prefetches never fault).
                if (Sse.IsSupported) Sse.Prefetch0(src + (p + 8) * depthStride);
                ScaleCopy(src + p * depthStride, dst + (long)p * width, lanes, scale);
                for (int l = lanes; l < width; l++) dst[(long)p * width + l] = 0;
            }
            return;
        }
        int lane = 0;
        if (depthStride == 1 && Sse.IsSupported)
        {
            var factor = Vector128.Create(scale);
            for (; lane + 4 <= lanes; lane += 4)
            {
                float* s0 = src + lane * laneStride, s1 = s0 + laneStride, s2 = s1 + laneStride, s3 = s2 + laneStride;
                float* d = dst + lane;
                int p = 0;
                for (; p + 4 <= depth; p += 4, d += 4 * width)
                {
                    var r0 = factor * Vector128.Load(s0 + p);
                    var r1 = factor * Vector128.Load(s1 + p);
                    var r2 = factor * Vector128.Load(s2 + p);
                    var r3 = factor * Vector128.Load(s3 + p);
                    var low01 = Sse.UnpackLow(r0, r1);
                    var low23 = Sse.UnpackLow(r2, r3);
                    var high01 = Sse.UnpackHigh(r0, r1);
                    var high23 = Sse.UnpackHigh(r2, r3);
                    Sse.MoveLowToHigh(low01, low23).Store(d);
                    Sse.MoveHighToLow(low23, low01).Store(d + width);
                    Sse.MoveLowToHigh(high01, high23).Store(d + 2 * width);
                    Sse.MoveHighToLow(high23, high01).Store(d + 3 * width);
                }
                for (; p < depth; p++, d += width)
                {
                    d[0] = scale * s0[p];
                    d[1] = scale * s1[p];
                    d[2] = scale * s2[p];
                    d[3] = scale * s3[p];
                }
            }
        }
        for (; lane < lanes; lane++)
        {
            float* s = src + lane * laneStride;
            float* d = dst + lane;
            for (int p = 0; p < depth; p++, s += depthStride, d += width)
                *d = scale * *s;
        }
        if (lanes < width)
            for (int p = 0; p < depth; p++)
                for (int l = lanes; l < width; l++) dst[(long)p * width + l] = 0;
    }

    /// <summary>dst[i] = scale · src[i] for i &lt; count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScaleCopy(float* src, float* dst, int count, float scale)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var s = Vector512.Create(scale);
            for (; i <= count - 16; i += 16) (s * Vector512.Load(src + i)).Store(dst + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i <= count - 8; i += 8) (s * Vector256.Load(src + i)).Store(dst + i);
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var s = Vector128.Create(scale);
            for (; i <= count - 4; i += 4) (s * Vector128.Load(src + i)).Store(dst + i);
        }
        for (; i < count; i++) dst[i] = scale * src[i];
    }

    /// <summary>Adds the top-left rows×columns of a scratch tile into C (with any strides): C = tile + beta · C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateTile(float* tile, int tileStride, int rows, int columns, float* c, long rowStride,
        long columnStride, float beta)
    {
        for (int i = 0; i < rows; i++)
        {
            float* source = tile + i * tileStride;
            float* target = c + i * rowStride;
            for (int j = 0; j < columns; j++, target += columnStride)
                *target = beta == 0 ? source[j] : source[j] + beta * *target;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512(float* c, Vector512<float> left, Vector512<float> right, float beta)
    {
        if (beta != 0)
        {
            var vbeta = Vector512.Create(beta);
            left = Avx512F.FusedMultiplyAdd(vbeta, Vector512.Load(c), left);
            right = Avx512F.FusedMultiplyAdd(vbeta, Vector512.Load(c + 16), right);
        }
        left.Store(c);
        right.Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow256(float* c, Vector256<float> left, Vector256<float> right, float beta)
    {
        if (beta != 0)
        {
            var vbeta = Vector256.Create(beta);
            left = Fma.MultiplyAdd(vbeta, Vector256.Load(c), left);
            right = Fma.MultiplyAdd(vbeta, Vector256.Load(c + 8), right);
        }
        left.Store(c);
        right.Store(c + 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow128(float* c, Vector128<float> left, Vector128<float> right, float beta)
    {
        if (beta != 0)
        {
            var vbeta = Vector128.Create(beta);
            left = Vector128.MultiplyAddEstimate(vbeta, Vector128.Load(c), left);
            right = Vector128.MultiplyAddEstimate(vbeta, Vector128.Load(c + 4), right);
        }
        left.Store(c);
        right.Store(c + 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowScalar(float* c, float c0, float c1, float c2, float c3, float beta)
    {
        if (beta != 0)
        {
            c0 += beta * c[0];
            c1 += beta * c[1];
            c2 += beta * c[2];
            c3 += beta * c[3];
        }
        c[0] = c0;
        c[1] = c1;
        c[2] = c2;
        c[3] = c3;
    }

    /// <summary>
    /// 64-byte aligned packing buffers, reused across calls so that steady-state GEMMs allocate nothing. Every call
    /// (B) or task (A) rents its own, so concurrent and nested GEMMs never share one; the pools only grow to the
    /// number of buffers ever in use at once and live as long as the process, like a BLAS library's buffers.
    /// </summary>
    private sealed class PackBuffer
    {
        private static readonly Stack<PackBuffer> FreeA = new();
        private static readonly Stack<PackBuffer> FreeB = new();

        public float* Data { get; private set; }
        private long _capacity;

        public static PackBuffer RentA(long floats) => Rent(FreeA, floats);
        public static PackBuffer RentB(long floats) => Rent(FreeB, floats);
        public static void ReturnA(PackBuffer buffer) => Return(FreeA, buffer);
        public static void ReturnB(PackBuffer buffer) => Return(FreeB, buffer);

        private static PackBuffer Rent(Stack<PackBuffer> pool, long floats)
        {
            PackBuffer? buffer;
            lock (pool) pool.TryPop(out buffer);
            buffer ??= new PackBuffer();
            if (buffer._capacity < floats)
            {
                // Grow in 64 KiB steps so that slightly different shapes do not reallocate every time.
                long capacity = (floats + 16383) & ~16383L;
                NativeMemory.AlignedFree(buffer.Data);
                buffer.Data = (float*)NativeMemory.AlignedAlloc((nuint)(capacity * sizeof(float)), 64);
                buffer._capacity = capacity;
            }
            return buffer;
        }

        private static void Return(Stack<PackBuffer> pool, PackBuffer buffer)
        {
            lock (pool) pool.Push(buffer);
        }
    }

    /// <summary>AVX-512 (x64): 12 rows x 32 columns, 24 zmm accumulators; two B loads and 12 broadcasts feed 24 FMAs per step.</summary>
    private readonly struct Avx512Kernel : IMicroKernel
    {
        public static bool IsSupported => Avx512F.IsSupported;
        public static int Rows => 12;
        public static int Columns => 32;
        public static int RowBlock => 192;
        public static int DepthBlock => 512;
        public static int ColumnBlock => 2048;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Multiply(int depth, float* a, float* b, float* c, long ldc, float beta)
        {
            Vector512<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default, c3a = default, c3b = default;
            Vector512<float> c4a = default, c4b = default, c5a = default, c5b = default, c6a = default, c6b = default, c7a = default, c7b = default;
            Vector512<float> c8a = default, c8b = default, c9a = default, c9b = default, c10a = default, c10b = default, c11a = default, c11b = default;
            // Pull the C tile toward L1 now; it is read and written only after the depth loop.
            Sse.Prefetch0(c);
            Sse.Prefetch0(c + 16);
            Sse.Prefetch0(c + 31);
            Sse.Prefetch0(c + ldc);
            Sse.Prefetch0(c + ldc + 16);
            Sse.Prefetch0(c + ldc + 31);
            Sse.Prefetch0(c + 2 * ldc);
            Sse.Prefetch0(c + 2 * ldc + 16);
            Sse.Prefetch0(c + 2 * ldc + 31);
            Sse.Prefetch0(c + 3 * ldc);
            Sse.Prefetch0(c + 3 * ldc + 16);
            Sse.Prefetch0(c + 3 * ldc + 31);
            Sse.Prefetch0(c + 4 * ldc);
            Sse.Prefetch0(c + 4 * ldc + 16);
            Sse.Prefetch0(c + 4 * ldc + 31);
            Sse.Prefetch0(c + 5 * ldc);
            Sse.Prefetch0(c + 5 * ldc + 16);
            Sse.Prefetch0(c + 5 * ldc + 31);
            Sse.Prefetch0(c + 6 * ldc);
            Sse.Prefetch0(c + 6 * ldc + 16);
            Sse.Prefetch0(c + 6 * ldc + 31);
            Sse.Prefetch0(c + 7 * ldc);
            Sse.Prefetch0(c + 7 * ldc + 16);
            Sse.Prefetch0(c + 7 * ldc + 31);
            Sse.Prefetch0(c + 8 * ldc);
            Sse.Prefetch0(c + 8 * ldc + 16);
            Sse.Prefetch0(c + 8 * ldc + 31);
            Sse.Prefetch0(c + 9 * ldc);
            Sse.Prefetch0(c + 9 * ldc + 16);
            Sse.Prefetch0(c + 9 * ldc + 31);
            Sse.Prefetch0(c + 10 * ldc);
            Sse.Prefetch0(c + 10 * ldc + 16);
            Sse.Prefetch0(c + 10 * ldc + 31);
            Sse.Prefetch0(c + 11 * ldc);
            Sse.Prefetch0(c + 11 * ldc + 16);
            Sse.Prefetch0(c + 11 * ldc + 31);
            for (int p = 0; p < depth; p++)
            {
                var b0 = Vector512.Load(b);
                var b1 = Vector512.Load(b + 16);
                var ai = Vector512.Create(a[0]);
                c0a = Avx512F.FusedMultiplyAdd(ai, b0, c0a);
                c0b = Avx512F.FusedMultiplyAdd(ai, b1, c0b);
                ai = Vector512.Create(a[1]);
                c1a = Avx512F.FusedMultiplyAdd(ai, b0, c1a);
                c1b = Avx512F.FusedMultiplyAdd(ai, b1, c1b);
                ai = Vector512.Create(a[2]);
                c2a = Avx512F.FusedMultiplyAdd(ai, b0, c2a);
                c2b = Avx512F.FusedMultiplyAdd(ai, b1, c2b);
                ai = Vector512.Create(a[3]);
                c3a = Avx512F.FusedMultiplyAdd(ai, b0, c3a);
                c3b = Avx512F.FusedMultiplyAdd(ai, b1, c3b);
                ai = Vector512.Create(a[4]);
                c4a = Avx512F.FusedMultiplyAdd(ai, b0, c4a);
                c4b = Avx512F.FusedMultiplyAdd(ai, b1, c4b);
                ai = Vector512.Create(a[5]);
                c5a = Avx512F.FusedMultiplyAdd(ai, b0, c5a);
                c5b = Avx512F.FusedMultiplyAdd(ai, b1, c5b);
                ai = Vector512.Create(a[6]);
                c6a = Avx512F.FusedMultiplyAdd(ai, b0, c6a);
                c6b = Avx512F.FusedMultiplyAdd(ai, b1, c6b);
                ai = Vector512.Create(a[7]);
                c7a = Avx512F.FusedMultiplyAdd(ai, b0, c7a);
                c7b = Avx512F.FusedMultiplyAdd(ai, b1, c7b);
                ai = Vector512.Create(a[8]);
                c8a = Avx512F.FusedMultiplyAdd(ai, b0, c8a);
                c8b = Avx512F.FusedMultiplyAdd(ai, b1, c8b);
                ai = Vector512.Create(a[9]);
                c9a = Avx512F.FusedMultiplyAdd(ai, b0, c9a);
                c9b = Avx512F.FusedMultiplyAdd(ai, b1, c9b);
                ai = Vector512.Create(a[10]);
                c10a = Avx512F.FusedMultiplyAdd(ai, b0, c10a);
                c10b = Avx512F.FusedMultiplyAdd(ai, b1, c10b);
                ai = Vector512.Create(a[11]);
                c11a = Avx512F.FusedMultiplyAdd(ai, b0, c11a);
                c11b = Avx512F.FusedMultiplyAdd(ai, b1, c11b);
                a += 12;
                b += 32;
            }
            StoreRow512(c, c0a, c0b, beta);
            StoreRow512(c + ldc, c1a, c1b, beta);
            StoreRow512(c + 2 * ldc, c2a, c2b, beta);
            StoreRow512(c + 3 * ldc, c3a, c3b, beta);
            StoreRow512(c + 4 * ldc, c4a, c4b, beta);
            StoreRow512(c + 5 * ldc, c5a, c5b, beta);
            StoreRow512(c + 6 * ldc, c6a, c6b, beta);
            StoreRow512(c + 7 * ldc, c7a, c7b, beta);
            StoreRow512(c + 8 * ldc, c8a, c8b, beta);
            StoreRow512(c + 9 * ldc, c9a, c9b, beta);
            StoreRow512(c + 10 * ldc, c10a, c10b, beta);
            StoreRow512(c + 11 * ldc, c11a, c11b, beta);
        }
    }

    /// <summary>AVX2 + FMA (x64): 6 rows x 16 columns, 12 ymm accumulators out of 16 registers.</summary>
    private readonly struct Avx2Kernel : IMicroKernel
    {
        public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;
        public static int Rows => 6;
        public static int Columns => 16;
        public static int RowBlock => 144;
        public static int DepthBlock => 256;
        public static int ColumnBlock => 2048;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Multiply(int depth, float* a, float* b, float* c, long ldc, float beta)
        {
            Vector256<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default, c3a = default, c3b = default;
            Vector256<float> c4a = default, c4b = default, c5a = default, c5b = default;
            // Pull the C tile toward L1 now; it is read and written only after the depth loop.
            Sse.Prefetch0(c);
            Sse.Prefetch0(c + 15);
            Sse.Prefetch0(c + ldc);
            Sse.Prefetch0(c + ldc + 15);
            Sse.Prefetch0(c + 2 * ldc);
            Sse.Prefetch0(c + 2 * ldc + 15);
            Sse.Prefetch0(c + 3 * ldc);
            Sse.Prefetch0(c + 3 * ldc + 15);
            Sse.Prefetch0(c + 4 * ldc);
            Sse.Prefetch0(c + 4 * ldc + 15);
            Sse.Prefetch0(c + 5 * ldc);
            Sse.Prefetch0(c + 5 * ldc + 15);
            for (int p = 0; p < depth; p++)
            {
                var b0 = Vector256.Load(b);
                var b1 = Vector256.Load(b + 8);
                var ai = Vector256.Create(a[0]);
                c0a = Fma.MultiplyAdd(ai, b0, c0a);
                c0b = Fma.MultiplyAdd(ai, b1, c0b);
                ai = Vector256.Create(a[1]);
                c1a = Fma.MultiplyAdd(ai, b0, c1a);
                c1b = Fma.MultiplyAdd(ai, b1, c1b);
                ai = Vector256.Create(a[2]);
                c2a = Fma.MultiplyAdd(ai, b0, c2a);
                c2b = Fma.MultiplyAdd(ai, b1, c2b);
                ai = Vector256.Create(a[3]);
                c3a = Fma.MultiplyAdd(ai, b0, c3a);
                c3b = Fma.MultiplyAdd(ai, b1, c3b);
                ai = Vector256.Create(a[4]);
                c4a = Fma.MultiplyAdd(ai, b0, c4a);
                c4b = Fma.MultiplyAdd(ai, b1, c4b);
                ai = Vector256.Create(a[5]);
                c5a = Fma.MultiplyAdd(ai, b0, c5a);
                c5b = Fma.MultiplyAdd(ai, b1, c5b);
                a += 6;
                b += 16;
            }
            StoreRow256(c, c0a, c0b, beta);
            StoreRow256(c + ldc, c1a, c1b, beta);
            StoreRow256(c + 2 * ldc, c2a, c2b, beta);
            StoreRow256(c + 3 * ldc, c3a, c3b, beta);
            StoreRow256(c + 4 * ldc, c4a, c4b, beta);
            StoreRow256(c + 5 * ldc, c5a, c5b, beta);
        }
    }

    /// <summary>Any 128-bit SIMD (SSE, Arm AdvSimd): 6 rows x 8 columns, 12 accumulators.</summary>
    private readonly struct Vector128Kernel : IMicroKernel
    {
        public static bool IsSupported => Vector128.IsHardwareAccelerated;
        public static int Rows => 6;
        public static int Columns => 8;
        public static int RowBlock => 120;
        public static int DepthBlock => 256;
        public static int ColumnBlock => 1024;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Multiply(int depth, float* a, float* b, float* c, long ldc, float beta)
        {
            Vector128<float> c0a = default, c0b = default, c1a = default, c1b = default, c2a = default, c2b = default, c3a = default, c3b = default;
            Vector128<float> c4a = default, c4b = default, c5a = default, c5b = default;
            for (int p = 0; p < depth; p++)
            {
                var b0 = Vector128.Load(b);
                var b1 = Vector128.Load(b + 4);
                var ai = Vector128.Create(a[0]);
                c0a = Vector128.MultiplyAddEstimate(ai, b0, c0a);
                c0b = Vector128.MultiplyAddEstimate(ai, b1, c0b);
                ai = Vector128.Create(a[1]);
                c1a = Vector128.MultiplyAddEstimate(ai, b0, c1a);
                c1b = Vector128.MultiplyAddEstimate(ai, b1, c1b);
                ai = Vector128.Create(a[2]);
                c2a = Vector128.MultiplyAddEstimate(ai, b0, c2a);
                c2b = Vector128.MultiplyAddEstimate(ai, b1, c2b);
                ai = Vector128.Create(a[3]);
                c3a = Vector128.MultiplyAddEstimate(ai, b0, c3a);
                c3b = Vector128.MultiplyAddEstimate(ai, b1, c3b);
                ai = Vector128.Create(a[4]);
                c4a = Vector128.MultiplyAddEstimate(ai, b0, c4a);
                c4b = Vector128.MultiplyAddEstimate(ai, b1, c4b);
                ai = Vector128.Create(a[5]);
                c5a = Vector128.MultiplyAddEstimate(ai, b0, c5a);
                c5b = Vector128.MultiplyAddEstimate(ai, b1, c5b);
                a += 6;
                b += 8;
            }
            StoreRow128(c, c0a, c0b, beta);
            StoreRow128(c + ldc, c1a, c1b, beta);
            StoreRow128(c + 2 * ldc, c2a, c2b, beta);
            StoreRow128(c + 3 * ldc, c3a, c3b, beta);
            StoreRow128(c + 4 * ldc, c4a, c4b, beta);
            StoreRow128(c + 5 * ldc, c5a, c5b, beta);
        }
    }

    /// <summary>Portable scalar fallback: 4 x 4 accumulators, for hardware without SIMD.</summary>
    private readonly struct ScalarKernel : IMicroKernel
    {
        public static bool IsSupported => true;
        public static int Rows => 4;
        public static int Columns => 4;
        public static int RowBlock => 64;
        public static int DepthBlock => 256;
        public static int ColumnBlock => 1024;

        public static void Multiply(int depth, float* a, float* b, float* c, long ldc, float beta)
        {
            float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
            float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
            for (int p = 0; p < depth; p++)
            {
                float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
                float a0 = a[0];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                float a1 = a[1];
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                float a2 = a[2];
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                float a3 = a[3];
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
                a += 4;
                b += 4;
            }
            StoreRowScalar(c, c00, c01, c02, c03, beta);
            StoreRowScalar(c + ldc, c10, c11, c12, c13, beta);
            StoreRowScalar(c + 2 * ldc, c20, c21, c22, c23, beta);
            StoreRowScalar(c + 3 * ldc, c30, c31, c32, c33, beta);
        }
    }
}
