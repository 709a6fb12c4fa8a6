using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<MatMulOp>, IKernel<LinearOp>
{
    public unsafe void Execute(MatMulOp op, in KernelArgs args)
    {
        Tensor a = args.Input(0), b = args.Input(1), c = args.Output;
        if (c.ElementCount == 0) return;
        int batchRank = c.Rank - 2;
        int m = c.Dim(-2), n = c.Dim(-1), k = op.TransposeA ? a.Dim(-2) : a.Dim(-1);
        var matrixA = Matrix(a, op.TransposeA);
        var matrixB = Matrix(b, op.TransposeB);
        var matrixC = Matrix(c, transposed: false);

        // Batch dims that matter (size > 1), with each operand's stride along them (0 where it broadcasts).
        Span<int> dims = stackalloc int[batchRank];
        Span<long> stridesA = stackalloc long[batchRank], stridesB = stackalloc long[batchRank], stridesC = stackalloc long[batchRank];
        int count = 0;
        for (int i = 0; i < batchRank; i++)
        {
            if (c.Dim(i) == 1) continue;
            dims[count] = c.Dim(i);
            stridesA[count] = BatchStride(a, batchRank, i);
            stridesB[count] = BatchStride(b, batchRank, i);
            stridesC[count] = c.Shape.Strides[i];
            count++;
        }

        // B shared across the innermost batch dims and A's rows continuing through them: fold them into M, so that
        // x [batch, tokens, K] · W [K, N] is one tall GEMM rather than many short ones.
        while (count > 0 && stridesB[count - 1] == 0 && (long)m * dims[count - 1] <= int.MaxValue
               && (m == 1 || (stridesA[count - 1] == m * matrixA.RowStride && stridesC[count - 1] == m * matrixC.RowStride)))
        {
            count--;
            if (m == 1)
            {
                matrixA = new MatrixView(matrixA.Data, stridesA[count], matrixA.ColumnStride);
                matrixC = new MatrixView(matrixC.Data, stridesC[count], matrixC.ColumnStride);
            }
            m *= dims[count];
        }

        // Merge neighbouring batch dims that every operand walks with one stride.
        int merged = 0;
        for (int i = 1; i < count; i++)
        {
            if (stridesA[merged] == stridesA[i] * dims[i] && stridesB[merged] == stridesB[i] * dims[i]
                && stridesC[merged] == stridesC[i] * dims[i] && (long)dims[merged] * dims[i] <= int.MaxValue)
            {
                dims[merged] *= dims[i];
                stridesA[merged] = stridesA[i];
                stridesB[merged] = stridesB[i];
                stridesC[merged] = stridesC[i];
            }
            else
            {
                merged++;
                dims[merged] = dims[i];
                stridesA[merged] = stridesA[i];
                stridesB[merged] = stridesB[i];
                stridesC[merged] = stridesC[i];
            }
        }
        count = Math.Min(count, merged + 1);

        if (count == 0)
        {
            CpuGemm.Multiply(CpuGemm.BestKernel, m, n, k, 1, matrixA, matrixB, 0, matrixC, parallel: true);
            return;
        }
        // The innermost batch dim is one strided batch; any outer ones (rare broadcasts) are walked here.
        int inner = count - 1;
        long outer = 1;
        for (int i = 0; i < inner; i++) outer *= dims[i];
        for (long index = 0; index < outer; index++)
        {
            long offsetA = 0, offsetB = 0, offsetC = 0, rest = index;
            for (int i = inner - 1; i >= 0; i--)
            {
                long position = rest % dims[i];
                rest /= dims[i];
                offsetA += position * stridesA[i];
                offsetB += position * stridesB[i];
                offsetC += position * stridesC[i];
            }
            CpuGemm.MultiplyBatched(CpuGemm.BestKernel, dims[inner], m, n, k, 1,
                matrixA.Offset(offsetA), stridesA[inner], matrixB.Offset(offsetB), stridesB[inner],
                0, matrixC.Offset(offsetC), stridesC[inner]);
        }
    }

    public unsafe void Execute(LinearOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), weight = args.Input(1), y = args.Output;
        int outFeatures = weight.Dim(0), inFeatures = weight.Dim(1);
        long rows = 1;
        for (int i = 0; i < x.Rank - 1; i++) rows *= x.Dim(i);
        if (rows == 0 || outFeatures == 0) return;
        float* output = y.Ptr<float>();
        float beta = 0;
        if (args.InputCount == 3)
        {
            // Start every output row at the bias and let the GEMM accumulate onto it (beta = 1).
            float* bias = args.Input(2).Ptr<float>();
            CpuParallel.For(rows, Math.Max(1, 16384 / outFeatures), (start, end) =>
            {
                var source = new ReadOnlySpan<float>(bias, outFeatures);
                for (long r = start; r < end; r++) source.CopyTo(new Span<float>(output + r * outFeatures, outFeatures));
            });
            beta = 1;
        }
        CpuGemm.Multiply(CpuGemm.BestKernel, checked((int)rows), outFeatures, inFeatures, 1,
            new MatrixView(x.Ptr<float>(), inFeatures, 1), new MatrixView(weight.Ptr<float>(), 1, inFeatures),
            beta, new MatrixView(output, outFeatures, 1), parallel: true);
    }

    /// <summary>The last two dims of <paramref name="t"/> as a strided matrix, read transposed when asked.</summary>
    private static unsafe MatrixView Matrix(Tensor t, bool transposed)
    {
        var strides = t.Shape.Strides;
        var view = new MatrixView(t.Ptr<float>(), strides[^2], strides[^1]);
        return transposed ? view.Transposed : view;
    }

    /// <summary>The stride of <paramref name="t"/> along output batch dim <paramref name="index"/>; 0 where it broadcasts.</summary>
    private static long BatchStride(Tensor t, int batchRank, int index)
    {
        int axis = index - (batchRank - (t.Rank - 2));
        return axis < 0 || t.Dim(axis) == 1 ? 0 : t.Shape.Strides[axis];
    }
}
