using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/copy.cu: any strided view (permute, slice) made contiguous, by element size.</summary>
public abstract partial class CudaKernelBackend : IKernel<CopyOp>
{
    public void Execute(CopyOp op, in KernelArgs args)
    {
        Tensor source = args.Input(0), destination = args.Output;
        var index = StridedIndex.Create(op.Name, destination.Shape, source.Shape);
        Span<LaunchArg> launch = stackalloc LaunchArg[3 + 1 + 2 * StridedIndex.MaxRank];
        launch[0] = source;
        launch[1] = destination;
        launch[2] = destination.ElementCount;
        int n = 3;
        n += index.WriteDims(launch[n..]);
        n += index.WriteStrides(0, launch[n..]);
        LaunchElementwise("copy_strided_" + UnitSuffix(source.DType.Size()), destination.ElementCount, launch[..n]);
    }
}
