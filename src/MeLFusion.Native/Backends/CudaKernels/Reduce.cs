using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/reduce.cu: one block per output element over the coalesced reduced axes.</summary>
public abstract partial class CudaKernelBackend : IKernel<ReduceSumOp>
{
    public void Execute(ReduceSumOp op, in KernelArgs args)
    {
        var axes = ReduceAxes.Of(args.Input(0).Shape, op.TargetDims);
        long outputs = args.Output.ElementCount, reduced = axes.Reduced.ElementCount;
        if (outputs == 0) return;
        Span<LaunchArg> launch = stackalloc LaunchArg[3 + 2 * (1 + 2 * StridedIndex.MaxRank) + 1];
        launch[0] = args.Input(0);
        launch[1] = args.Output;
        launch[2] = outputs;
        int n = 3;
        n += StridedIndex.WriteShape(op.Name, axes.Kept, launch[n..]);
        n += StridedIndex.WriteShape(op.Name, axes.Reduced, launch[n..]);
        launch[n++] = reduced;
        Launch("reduce_sum_f32", (int)Math.Min(outputs, MaxElementwiseBlocks), ReductionThreads(reduced), 0, launch[..n]);
    }
}
