using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// Sums in double over a fixed split of the reduced space (the split depends only on the shapes), then adds the
/// partial sums in order: the result is the same on any number of cores.
/// </summary>
public sealed partial class CpuBackend : IKernel<ReduceSumOp>, IKernelWorkspace<ReduceSumOp>
{
    /// <summary>Reduced elements one task sums before the partials are combined.</summary>
    private const long ReduceChunk = 16384;

    public long WorkspaceBytes(ReduceSumOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output)
    {
        var axes = ReduceAxes.Of(inputs[0].Shape, op.TargetDims);
        return RowMajor(axes) ? Chunks(axes.Reduced.ElementCount) * axes.Kept.ElementCount * sizeof(double) : 0;
    }

    public unsafe void Execute(ReduceSumOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* y = args.Output.Ptr<float>();
        var axes = ReduceAxes.Of(args.Input(0).Shape, op.TargetDims);
        long outputs = args.Output.ElementCount, count = axes.Reduced.ElementCount;
        if (RowMajor(axes)) SumRows(x, y, (double*)args.Workspace.Data, count, outputs);
        else CpuParallel.For(outputs, Math.Max(1, ReduceChunk / Math.Max(1, count)), (start, end) =>
        {
            for (long o = start; o < end; o++)
                y[o] = (float)SumStrided(x + Offset(axes.Kept, o, axes.Kept.Rank), axes.Reduced);
        });
    }

    /// <summary>x is [reduced, kept] in memory (bias gradients of linear layers): rows are added, never columns walked.</summary>
    private static bool RowMajor(ReduceAxes axes) =>
        axes.Kept.Rank == 1 && axes.Kept.Strides[0] == 1 && axes.Reduced.Rank == 1 && axes.Reduced.Strides[0] == axes.Kept[0];

    private static long Chunks(long rows) => Math.Max(1, (rows + 63) / 64);

    private static unsafe void SumRows(float* x, float* y, double* partials, long rows, long width)
    {
        long chunks = Chunks(rows);
        CpuParallel.For(chunks, 1, (start, end) =>
        {
            for (long c = start; c < end; c++)
            {
                double* partial = partials + c * width;
                new Span<double>(partial, checked((int)width)).Clear();
                for (long r = c * 64; r < Math.Min(rows, (c + 1) * 64); r++)
                {
                    float* row = x + r * width;
                    for (long j = 0; j < width; j++) partial[j] += row[j];
                }
            }
        });
        CpuParallel.For(width, 4096, (start, end) =>
        {
            for (long j = start; j < end; j++)
            {
                double sum = 0;
                for (long c = 0; c < chunks; c++) sum += partials[c * width + j];
                y[j] = (float)sum;
            }
        });
    }

    private static unsafe double SumStrided(float* x, TensorShape axes)
    {
        int last = axes.Rank - 1;
        int run = axes[last];
        long runStride = axes.Strides[last];
        long runs = axes.ElementCount / run;
        double sum = 0;
        for (long r = 0; r < runs; r++)
        {
            float* p = x + Offset(axes, r, last);
            for (int i = 0; i < run; i++) sum += p[i * runStride];
        }
        return sum;
    }

    /// <summary>Element offset of flat index <paramref name="flat"/> over the first <paramref name="rank"/> axes.</summary>
    private static long Offset(TensorShape axes, long flat, int rank)
    {
        long offset = 0;
        for (int a = rank - 1; a >= 0; a--)
        {
            long q = flat / axes[a];
            offset += (flat - q * axes[a]) * axes.Strides[a];
            flat = q;
        }
        return offset;
    }
}
