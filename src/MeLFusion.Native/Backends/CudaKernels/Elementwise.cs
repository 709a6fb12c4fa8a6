using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/elementwise.cu: binary_f32 (broadcast a op b over strided views) and scalar_f32 (x op constant),
/// clamp_backward_f32 (dy masked to where x lies inside the clamp).</summary>
public abstract partial class CudaKernelBackend : IKernel<BinaryOp>, IKernel<ScalarOp>, IKernel<ClampGradientOp>
{
    public void Execute(ClampGradientOp op, in KernelArgs args)
    {
        long count = args.Output.ElementCount;
        LaunchElementwise("clamp_backward_f32", count, args.Input(0), args.Input(1), args.Output, count, op.Min, op.Max);
    }

    /// <summary>Operation codes of kernels/elementwise.cu.</summary>
    private enum ElementwiseCode
    {
        Add = 0,
        Subtract = 1,
        Multiply = 2,
        Divide = 3,
        Maximum = 4,
        Minimum = 5,
    }

    public void Execute(BinaryOp op, in KernelArgs args)
    {
        Tensor a = args.Input(0), b = args.Input(1), output = args.Output;
        var code = op.Operation switch
        {
            BinaryOperation.Add => ElementwiseCode.Add,
            BinaryOperation.Subtract => ElementwiseCode.Subtract,
            BinaryOperation.Multiply => ElementwiseCode.Multiply,
            BinaryOperation.Divide => ElementwiseCode.Divide,
            _ => throw new NotSupportedException($"{Name}: binary operation {op.Operation} has no kernel"),
        };
        var index = StridedIndex.Create(op.Name, output.Shape, a.Shape, b.Shape);
        Span<LaunchArg> launch = stackalloc LaunchArg[6 + 1 + 3 * StridedIndex.MaxRank];
        launch[0] = a;
        launch[1] = b;
        launch[2] = output;
        launch[3] = output.ElementCount;
        launch[4] = (int)code;
        int n = 5;
        n += index.WriteDims(launch[n..]);
        n += index.WriteStrides(0, launch[n..]);
        n += index.WriteStrides(1, launch[n..]);
        LaunchElementwise("binary_f32", output.ElementCount, launch[..n]);
    }

    public void Execute(ScalarOp op, in KernelArgs args)
    {
        Tensor x = args.Input(0), output = args.Output;
        var code = op.Operation switch
        {
            ScalarOperation.Add => ElementwiseCode.Add,
            ScalarOperation.Multiply => ElementwiseCode.Multiply,
            ScalarOperation.Maximum => ElementwiseCode.Maximum,
            ScalarOperation.Minimum => ElementwiseCode.Minimum,
            _ => throw new NotSupportedException($"{Name}: scalar operation {op.Operation} has no kernel"),
        };
        var index = StridedIndex.Create(op.Name, output.Shape, x.Shape);
        Span<LaunchArg> launch = stackalloc LaunchArg[5 + 1 + 2 * StridedIndex.MaxRank];
        launch[0] = x;
        launch[1] = output;
        launch[2] = output.ElementCount;
        launch[3] = (int)code;
        launch[4] = op.Value;
        int n = 5;
        n += index.WriteDims(launch[n..]);
        n += index.WriteStrides(0, launch[n..]);
        LaunchElementwise("scalar_f32", output.ElementCount, launch[..n]);
    }
}
