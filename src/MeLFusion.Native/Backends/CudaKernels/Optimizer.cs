using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/optimizer.cu: the AdamW step, EMA update and fill as grid-stride loops over the flat buffer; Σ x² as per-block
/// double partials in the op's workspace, then one block adding them in order.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<AdamWStepOp>, IKernel<EmaUpdateOp>, IKernel<FillOp>, IKernel<SumOfSquaresOp>,
    IKernelWorkspace<SumOfSquaresOp>
{
    /// <summary>Threads per block of the Σ x² kernels.</summary>
    private const int SquareSumThreads = 256;

    /// <summary>Most partials of Σ x²: 1024 blocks of 256 threads fill any current GPU; the final block reads 4 each.</summary>
    private const long MaxSquareSumBlocks = 1024;

    /// <summary>Elements each Σ x² thread sums at least, before the grid grows to <see cref="MaxSquareSumBlocks"/>.</summary>
    private const long SquareSumElementsPerThread = 16;

    public void Execute(AdamWStepOp op, in KernelArgs args)
    {
        var c = op.KernelCoefficients;
        long count = args.Input(0).Dim(1);
        LaunchElementwise("adamw_step_f32", count, args.Input(0), args.Input(1), args.Input(2), args.Input(3), args.Output, count,
            c.Beta1, c.OneMinusBeta1, c.Beta2, c.OneMinusBeta2, c.Epsilon, c.WeightDecay, c.MaxGradNorm, c.Clips ? 1 : 0);
    }

    public void Execute(EmaUpdateOp op, in KernelArgs args)
    {
        long count = args.Output.ElementCount;
        LaunchElementwise("ema_update_f32", count, args.Input(0), args.Input(1), args.Output, count, (float)op.Decay, op.OneMinusDecay);
    }

    public void Execute(FillOp op, in KernelArgs args) =>
        LaunchElementwise("fill_f32", args.Output.ElementCount, args.Output, args.Output.ElementCount, op.Value);

    public long WorkspaceBytes(SumOfSquaresOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        SquareSumBlocks(inputs[0].Shape.ElementCount) * sizeof(double);

    public void Execute(SumOfSquaresOp op, in KernelArgs args)
    {
        long count = args.Input(0).ElementCount;
        int blocks = SquareSumBlocks(count);
        Launch("sum_of_squares_blocks_f32", blocks, SquareSumThreads, 0, args.Input(0), args.Workspace.Data, count);
        Launch("sum_of_squares_final_f32", 1, SquareSumThreads, 0, args.Workspace.Data, args.Output, blocks);
    }

    /// <summary>The Σ x² grid: a function of the element count alone, so the summation order is too.</summary>
    private static int SquareSumBlocks(long count) =>
        (int)Math.Clamp((count + SquareSumThreads * SquareSumElementsPerThread - 1) / (SquareSumThreads * SquareSumElementsPerThread), 1, MaxSquareSumBlocks);
}
