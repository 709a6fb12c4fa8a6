using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/activations.cu: activation_f32 (GELU, tanh-GELU, SiLU, leaky ReLU, tanh) and geglu_f32.</summary>
public abstract partial class CudaKernelBackend : IKernel<ActivationOp>, IKernel<GegluOp>
{
    public void Execute(ActivationOp op, in KernelArgs args)
    {
        // Codes of kernels/activations.cu.
        int kind = op.Activation switch
        {
            Activation.GeluErf => 0,
            Activation.GeluTanh => 1,
            Activation.Silu => 2,
            Activation.LeakyRelu => 3,
            Activation.Tanh => 4,
            _ => throw new NotSupportedException($"{Name}: activation {op.Activation} has no kernel"),
        };
        long count = args.Output.ElementCount;
        LaunchElementwise("activation_f32", count, args.Input(0), args.Output, count, kind, op.NegativeSlope);
    }

    public void Execute(GegluOp op, in KernelArgs args)
    {
        var output = args.Output;
        int hidden = output.Dim(-1);
        if (hidden == 0) return;
        long rows = output.ElementCount / hidden;
        LaunchElementwise("geglu_f32", output.ElementCount, args.Input(0), output, rows, hidden);
    }
}
