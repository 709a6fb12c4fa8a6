using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/upsample.cu: nearest 2x of [N, C, H, W], 2- or 4-byte elements.</summary>
public abstract partial class CudaKernelBackend : IKernel<UpsampleNearest2xOp>
{
    public void Execute(UpsampleNearest2xOp op, in KernelArgs args)
    {
        var output = args.Output;
        LaunchElementwise("upsample_nearest2x_" + UnitSuffix(output.DType.Size()), output.ElementCount,
            args.Input(0), output, output.ElementCount, args.Input(0).Dim(3));
    }
}
