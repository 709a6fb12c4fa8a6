using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/group_norm.cu (<see cref="GroupNormKernel"/>), kernels/layer_norm.cu and kernels/rms_norm.cu.</summary>
public abstract partial class CudaKernelBackend : IKernel<GroupNormOp>, IKernel<LayerNormOp>, IKernel<RmsNormOp>
{
    public void Execute(GroupNormOp op, in KernelArgs args)
    {
        Tensor? weight = op.HasWeight ? args.Input(1) : null;
        Tensor? bias = op.HasBias ? args.Input(op.HasWeight ? 2 : 1) : null;
        GroupNormKernel.Launch(this, args.Input(0), weight, bias, args.Output, op.Groups, op.Epsilon, op.Silu);
    }

    public void Execute(LayerNormOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchArg weight = op.HasWeight ? args.Input(1) : LaunchArg.NullPointer;
        LaunchArg bias = op.HasBias ? args.Input(op.HasWeight ? 2 : 1) : LaunchArg.NullPointer;
        LaunchRows("layer_norm_f32", op.Name, output, length, args.Input(0), weight, bias, output, length, op.Epsilon);
    }

    public void Execute(RmsNormOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchRows("rms_norm_f32", op.Name, output, length, args.Input(0), args.Input(1), output, length, op.Epsilon);
    }
}
