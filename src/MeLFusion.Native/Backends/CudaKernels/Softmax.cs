using MeLFusion.Native.Interop;
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

    /// <summary>
    /// Launches a row kernel (one block per row of the last dim, <paramref name="length"/> elements each) over
    /// <paramref name="output"/>'s rows; nothing when there are none.
    /// </summary>
    private void LaunchRows(string kernel, string op, Tensor output, int length, params ReadOnlySpan<LaunchArg> args)
    {
        if (output.ElementCount == 0) return;
        long rows = output.ElementCount / length;
        if (rows > int.MaxValue)
            throw new NotSupportedException($"{op}: {output} has {rows} rows; a launch takes at most {int.MaxValue} (one block per row)");
        Launch(kernel, (int)rows, ReductionThreads(length), 0, args);
    }
}
