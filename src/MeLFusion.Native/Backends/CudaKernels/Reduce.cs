using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/reduce.cu: one block per output element over the coalesced reduced axes.</summary>
public abstract partial class CudaKernelBackend : IKernel<ReduceSumOp>
{
    public void Execute(ReduceSumOp op, in KernelArgs args) => LaunchSumTo(op.Name, args.Input(0), args.Output);

    /// <summary>
    /// Sums contiguous <paramref name="x"/> down to <paramref name="y"/>'s dims (broadcast-compatible, see
    /// <see cref="ReduceSumOp"/>) with reduce_sum_f32, in a fixed order; also the last, in-order step of the kernels that
    /// write partial sums to a workspace.
    /// </summary>
    private void LaunchSumTo(string op, Tensor x, Tensor y)
    {
        var axes = ReduceAxes.Of(x.Shape, y.Shape.Dims);
        long outputs = y.ElementCount, reduced = axes.Reduced.ElementCount;
        if (outputs == 0) return;
        Span<LaunchArg> launch = stackalloc LaunchArg[3 + 2 * (1 + 2 * StridedIndex.MaxRank) + 1];
        launch[0] = x;
        launch[1] = y;
        launch[2] = outputs;
        int n = 3;
        n += StridedIndex.WriteShape(op, axes.Kept, launch[n..]);
        n += StridedIndex.WriteShape(op, axes.Reduced, launch[n..]);
        launch[n++] = reduced;
        Launch("reduce_sum_f32", (int)Math.Min(outputs, MaxElementwiseBlocks), ReductionThreads(reduced), 0, launch[..n]);
    }
}
