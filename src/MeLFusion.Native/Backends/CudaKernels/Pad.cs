using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/pad.cu: zero padding of the last two dims, any element size.</summary>
public abstract partial class CudaKernelBackend : IKernel<Pad2dOp>
{
    public void Execute(Pad2dOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), y = args.Output;
        LaunchElementwise("pad2d_" + UnitSuffix(x.DType.Size()), y.ElementCount,
            x, y, y.ElementCount, x.Dim(-2), x.Dim(-1), y.Dim(-2), y.Dim(-1), op.Top, op.Left);
    }
}
