using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/softmax.cu: one block per row of the last dim, forward and backward.</summary>
public abstract partial class CudaKernelBackend : IKernel<SoftmaxOp>, IKernel<SoftmaxBackwardOp>
{
    public void Execute(SoftmaxOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchRows("softmax_f32", op.Name, output, length, args.Input(0), output, length);
    }

    public void Execute(SoftmaxBackwardOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchRows("softmax_backward_f32", op.Name, output, length, args.Input(0), args.Input(1), output, length);
    }
}
