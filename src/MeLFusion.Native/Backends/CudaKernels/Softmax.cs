using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/softmax.cu: one block per row of the last dim.</summary>
public abstract partial class CudaKernelBackend : IKernel<SoftmaxOp>
{
    public void Execute(SoftmaxOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchRows("softmax_f32", op.Name, output, length, args.Input(0), output, length);
    }
}
