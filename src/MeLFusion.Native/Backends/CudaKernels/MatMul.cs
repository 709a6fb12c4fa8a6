using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// One strided-batched GEMM in row-major terms: C[b] = A[b] · B[b] (+ bias[j] on every row) for b &lt; BatchCount, with
/// A[i, k] at A + (b·ABatch + i·ARow + k·ACol) elements, B[k, j] at B + (b·BBatch + k·BRow + j·BCol), C[i, j] at
/// C + (b·CBatch + i·CRow + j). A batch stride of 0 shares that operand across the batch. <see cref="Bias"/> is 0 when
/// there is none.
/// </summary>
public readonly record struct GemmCall(
    DType DType, int M, int N, int K,
    nint A, long ARow, long ACol, long ABatch,
    nint B, long BRow, long BCol, long BBatch,
    nint C, long CRow, long CBatch,
    nint Bias, int BatchCount);

/// <summary>
/// MatMulOp and LinearOp: both reduce to <see cref="GemmCall"/>s, run by <see cref="Gemm"/> (kernels/gemm.cu here;
/// the cuda backend overrides it with cuBLAS).
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<MatMulOp>, IKernel<LinearOp>
{
    /// <summary>Blocks per grid dimension y and z: the launch limit (65535) for either.</summary>
    private const int MaxGridYz = 65535;

    /// <summary>Output tile of kernels/gemm.cu (rows and columns) and its block size.</summary>
    private const int GemmTile = 64, GemmThreads = 256;

    public void Execute(MatMulOp op, in KernelArgs args)
    {
        Tensor a = args.Input(0), b = args.Input(1), c = args.Output;
        if (c.ElementCount == 0) return;
        int batchRank = c.Rank - 2;
        int m = c.Dim(-2), n = c.Dim(-1), k = op.TransposeA ? a.Dim(-2) : a.Dim(-1);
        var (aRow, aCol) = MatrixStrides(a, op.TransposeA);
        var (bRow, bCol) = MatrixStrides(b, op.TransposeB);
        long cRow = c.Shape.Strides[^2];
        int elementSize = c.DType.Size();

        // Batch dims that matter (size > 1), with each operand's stride along them (0 where it broadcasts).
        var dims = new List<int>();
        var strides = new List<(long A, long B, long C)>();
        for (int i = 0; i < batchRank; i++)
        {
            if (c.Dim(i) == 1) continue;
            dims.Add(c.Dim(i));
            strides.Add((BatchStride(a, batchRank, i), BatchStride(b, batchRank, i), c.Shape.Strides[i]));
        }

        // B shared across the innermost batch dims while A's and C's rows run on through them: fold them into M, so
        // x [batch, tokens, K] · W [K, N] is one tall GEMM rather than a batch of short ones.
        while (dims.Count > 0 && strides[^1].B == 0 && (long)m * dims[^1] <= int.MaxValue
               && (m == 1 || (strides[^1].A == m * aRow && strides[^1].C == m * cRow)))
        {
            if (m == 1)
            {
                aRow = strides[^1].A;
                cRow = strides[^1].C;
            }
            m *= dims[^1];
            dims.RemoveAt(dims.Count - 1);
            strides.RemoveAt(strides.Count - 1);
        }

        // Merge neighbouring batch dims that every operand walks with one stride.
        for (int i = dims.Count - 1; i > 0; i--)
        {
            var (outer, inner) = (strides[i - 1], strides[i]);
            int d = dims[i];
            if (outer.A == inner.A * d && outer.B == inner.B * d && outer.C == inner.C * d && (long)dims[i - 1] * d <= int.MaxValue)
            {
                dims[i - 1] *= d;
                strides[i - 1] = inner;
                dims.RemoveAt(i);
                strides.RemoveAt(i);
            }
        }

        // The innermost batch dim is one strided batch; any outer ones (rare broadcasts) are walked here.
        int batch = dims.Count == 0 ? 1 : dims[^1];
        var batchStrides = dims.Count == 0 ? (A: 0L, B: 0L, C: 0L) : strides[^1];
        long outerCount = 1;
        for (int i = 0; i < dims.Count - 1; i++) outerCount *= dims[i];
        for (long index = 0; index < outerCount; index++)
        {
            long offsetA = 0, offsetB = 0, offsetC = 0, rest = index;
            for (int i = dims.Count - 2; i >= 0; i--)
            {
                long position = rest % dims[i];
                rest /= dims[i];
                offsetA += position * strides[i].A;
                offsetB += position * strides[i].B;
                offsetC += position * strides[i].C;
            }
            Gemm(new GemmCall(c.DType, m, n, k,
                a.Data + (nint)(offsetA * elementSize), aRow, aCol, batchStrides.A,
                b.Data + (nint)(offsetB * elementSize), bRow, bCol, batchStrides.B,
                c.Data + (nint)(offsetC * elementSize), cRow, batchStrides.C,
                0, batch));
        }
    }

    public void Execute(LinearOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), weight = args.Input(1), y = args.Output;
        int outFeatures = weight.Dim(0), inFeatures = weight.Dim(1);
        long rows = y.ElementCount / Math.Max(outFeatures, 1);
        if (rows == 0 || outFeatures == 0) return;
        // y [rows, out] = x [rows, in] · Wᵀ: B[k, j] = W[j, k].
        Gemm(new GemmCall(y.DType, checked((int)rows), outFeatures, inFeatures,
            x.Data, inFeatures, 1, 0,
            weight.Data, 1, inFeatures, 0,
            y.Data, outFeatures, 0,
            args.InputCount == 3 ? args.Input(2).Data : 0, 1));
    }

    /// <summary>
    /// Runs <paramref name="call"/> with kernels/gemm.cu (f32 only): 64x64 output tiles, grid dims y and z split into
    /// launches of at most 65535 blocks.
    /// </summary>
    protected virtual void Gemm(in GemmCall call)
    {
        if (call.DType != DType.F32)
            throw new NotSupportedException($"{Name}: gemm_f32 has no {call.DType} variant");
        int size = sizeof(float);
        long rowTiles = (call.M + GemmTile - 1) / GemmTile, columnTiles = (call.N + GemmTile - 1) / GemmTile;
        if (columnTiles > int.MaxValue) throw new NotSupportedException($"{Name}: gemm N = {call.N} is too wide");
        for (long firstTile = 0; firstTile < rowTiles; firstTile += MaxGridYz)
        {
            int tiles = (int)Math.Min(MaxGridYz, rowTiles - firstTile);
            int firstRow = (int)(firstTile * GemmTile), rows = Math.Min(call.M - firstRow, tiles * GemmTile);
            for (int firstBatch = 0; firstBatch < call.BatchCount; firstBatch += MaxGridYz)
            {
                int batches = Math.Min(MaxGridYz, call.BatchCount - firstBatch);
                nint a = call.A + (nint)((firstBatch * call.ABatch + firstRow * call.ARow) * size);
                nint b = call.B + (nint)(firstBatch * call.BBatch * size);
                nint c = call.C + (nint)((firstBatch * call.CBatch + firstRow * call.CRow) * size);
                Launch("gemm_f32", ((int)columnTiles, tiles, batches), GemmThreads, 0,
                    a, b, c, call.Bias, rows, call.N, call.K, call.ARow, call.ACol, call.BRow, call.BCol, call.CRow,
                    call.ABatch, call.BBatch, call.CBatch);
            }
        }
    }

    /// <summary>
    /// The epilogue of a GEMM that had no bias of its own (cuBLAS): C[b, i, j] += bias[j] with kernels/gemm.cu's
    /// bias_add_f32.
    /// </summary>
    protected void AddBias(in GemmCall call) =>
        LaunchElementwise("bias_add_f32", (long)call.BatchCount * call.M * call.N,
            call.C, call.Bias, call.BatchCount, call.M, call.N, call.CRow, call.CBatch);

    /// <summary>Row and column strides of the matrix in <paramref name="t"/>'s last two dims, read transposed when asked.</summary>
    private static (long Row, long Column) MatrixStrides(Tensor t, bool transposed)
    {
        var strides = t.Shape.Strides;
        return transposed ? (strides[^1], strides[^2]) : (strides[^2], strides[^1]);
    }

    /// <summary>The stride of <paramref name="t"/> along output batch dim <paramref name="index"/>; 0 where it broadcasts.</summary>
    private static long BatchStride(Tensor t, int batchRank, int index)
    {
        int axis = index - (batchRank - (t.Rank - 2));
        return axis < 0 || t.Dim(axis) == 1 ? 0 : t.Shape.Strides[axis];
    }
}
