using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/activations.cu: activation_f32 (GELU, tanh-GELU, SiLU, leaky ReLU, tanh, exp, log, abs, sqrt, square,
/// sigmoid) and geglu_f32, and their gradients activation_backward_f32 and geglu_backward_f32.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<ActivationOp>, IKernel<GegluOp>, IKernel<ActivationGradientOp>, IKernel<GegluGradientOp>
{
    public void Execute(ActivationOp op, in KernelArgs args)
    {
        long count = args.Output.ElementCount;
        LaunchElementwise("activation_f32", count, args.Input(0), args.Output, count, ActivationCode(op.Activation), op.NegativeSlope);
    }

    public void Execute(ActivationGradientOp op, in KernelArgs args)
    {
        long count = args.Output.ElementCount;
        LaunchElementwise("activation_backward_f32", count, args.Input(0), args.Input(1), args.Output, count,
            ActivationCode(op.Activation), op.NegativeSlope);
    }

    public void Execute(GegluOp op, in KernelArgs args)
    {
        var output = args.Output;
        int hidden = output.Dim(-1);
        if (hidden == 0) return;
        long rows = output.ElementCount / hidden;
        LaunchElementwise("geglu_f32", output.ElementCount, args.Input(0), output, rows, hidden);
    }

    public void Execute(GegluGradientOp op, in KernelArgs args)
    {
        var dy = args.Input(1);
        int hidden = dy.Dim(-1);
        if (hidden == 0) return;
        long rows = dy.ElementCount / hidden;
        LaunchElementwise("geglu_backward_f32", dy.ElementCount, args.Input(0), dy, args.Output, rows, hidden);
    }

    /// <summary>The activation's code in kernels/activations.cu.</summary>
    private int ActivationCode(Activation activation) => activation switch
    {
        Activation.GeluErf => 0,
        Activation.GeluTanh => 1,
        Activation.Silu => 2,
        Activation.LeakyRelu => 3,
        Activation.Tanh => 4,
        Activation.Exp => 5,
        Activation.Log => 6,
        Activation.Abs => 7,
        Activation.Sqrt => 8,
        Activation.Square => 9,
        Activation.Sigmoid => 10,
        _ => throw new NotSupportedException($"{Name}: activation {activation} has no kernel"),
    };
}
