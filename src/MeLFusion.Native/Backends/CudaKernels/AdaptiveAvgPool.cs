using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/adaptive_avg_pool.cu: 1-D pooling of a middle dim and its gradient; 2-D as two passes through the op's
/// workspace.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<AdaptiveAvgPoolOp>, IKernel<AdaptiveAvgPoolGradientOp>
{
    public void Execute(AdaptiveAvgPoolOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), y = args.Output;
        if (x.ElementCount == 0) return;
        int axis = op.ResolveFirstAxis(x.Rank);
        if (op.OutputSizes.Length == 1)
        {
            long inner = 1;
            for (int a = axis + 1; a < x.Rank; a++) inner *= x.Dim(a);
            Pool(x.Data, y.Data, x.ElementCount / (x.Dim(axis) * inner), x.Dim(axis), op.OutputSizes[0], inner);
            return;
        }
        // Separable: pool first the dim that leaves the smaller intermediate, as the op sized its workspace for.
        int height = x.Dim(-2), width = x.Dim(-1), outHeight = op.OutputSizes[0], outWidth = op.OutputSizes[1];
        long outer = x.ElementCount / ((long)height * width);
        nint middle = args.Workspace.Data;
        if (AdaptiveAvgPoolOp.TwoDIntermediateElements(outer, height, width, outHeight, outWidth).PoolHeightFirst)
        {
            Pool(x.Data, middle, outer, height, outHeight, width);
            Pool(middle, y.Data, outer * outHeight, width, outWidth, 1);
        }
        else
        {
            Pool(x.Data, middle, outer * height, width, outWidth, 1);
            Pool(middle, y.Data, outer, height, outHeight, outWidth);
        }
    }

    public void Execute(AdaptiveAvgPoolGradientOp op, in KernelArgs args)
    {
        Tensor dy = args.Input(0), dx = args.Output;
        if (dy.ElementCount == 0) return;
        var (first, second) = op.Passes(dy.Shape);
        if (second is not { } last)
        {
            Spread(dy.Data, dx.Data, first);
            return;
        }
        Spread(dy.Data, args.Workspace.Data, first);
        Spread(args.Workspace.Data, dx.Data, last);
    }

    private void Spread(nint dy, nint dx, PoolPass pass) =>
        LaunchElementwise("adaptive_avg_pool_backward_f32", pass.Output, dy, dx, pass.Outer, pass.Bins, pass.Inputs, pass.Inner);

    /// <summary>[outer, n, inner] -> [outer, m, inner] f32.</summary>
    private void Pool(nint source, nint destination, long outer, int n, int m, long inner) =>
        LaunchElementwise("adaptive_avg_pool_f32", outer * m * inner, source, destination, outer, n, m, inner);
}
