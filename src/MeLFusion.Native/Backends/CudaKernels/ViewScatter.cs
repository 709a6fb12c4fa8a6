using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/view_scatter.cu: zero the target, then write the view's elements through its strides.</summary>
public abstract partial class CudaKernelBackend : IKernel<ViewScatterOp>
{
    public void Execute(ViewScatterOp op, in KernelArgs args)
    {
        var output = args.Output;
        LaunchElementwise("fill_f32", output.ElementCount, output, output.ElementCount, 0f);
        var view = StridedIndex.Create(op.Name, op.View, op.View);
        Span<LaunchArg> launch = stackalloc LaunchArg[4 + 1 + 2 * StridedIndex.MaxRank];
        launch[0] = args.Input(0);
        launch[1] = output;
        launch[2] = op.View.ElementCount;
        launch[3] = op.ElementOffset;
        int n = 4;
        n += view.WriteDims(launch[n..]);
        n += view.WriteStrides(0, launch[n..]);
        LaunchElementwise("view_scatter_f32", op.View.ElementCount, launch[..n]);
    }
}
