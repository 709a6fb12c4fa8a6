using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/group_norm.cu (<see cref="GroupNormKernel"/>), kernels/layer_norm.cu and kernels/rms_norm.cu, forward and
/// gradients. Parameter gradients are summed per batch item (group norm) or per row chunk (layer and RMS norm) into the
/// op's workspace, then added in order by reduce_sum_f32.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<GroupNormOp>, IKernel<LayerNormOp>, IKernel<RmsNormOp>,
    IKernel<GroupNormInputGradientOp>, IKernel<GroupNormParamGradientOp>, IKernel<LayerNormInputGradientOp>,
    IKernel<LayerNormParamGradientOp>, IKernel<RmsNormInputGradientOp>, IKernel<RmsNormWeightGradientOp>
{
    public void Execute(GroupNormOp op, in KernelArgs args)
    {
        var (weight, bias) = Affine(op.HasWeight, op.HasBias, args);
        GroupNormKernel.Launch(this, args.Input(0), weight, bias, args.Output, op.Groups, op.Epsilon, op.Silu);
    }

    public void Execute(LayerNormOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        var (weight, bias) = Affine(op.HasWeight, op.HasBias, args);
        LaunchRows("layer_norm_f32", op.Name, output, length, args.Input(0), Pointer(weight), Pointer(bias), output, length, op.Epsilon);
    }

    public void Execute(RmsNormOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchRows("rms_norm_f32", op.Name, output, length, args.Input(0), args.Input(1), output, length, op.Epsilon);
    }

    public void Execute(GroupNormInputGradientOp op, in KernelArgs args)
    {
        var forward = op.Forward;
        var (weight, bias) = Affine(forward.HasWeight, forward.HasBias, args);
        GroupNormKernel.LaunchInputGradient(this, args.Input(0), weight, bias, args.Input(args.InputCount - 1), args.Output,
            forward.Groups, forward.Epsilon, forward.Silu);
    }

    public void Execute(GroupNormParamGradientOp op, in KernelArgs args)
    {
        var forward = op.Forward;
        var x = args.Input(0);
        var (weight, bias) = Affine(forward.HasWeight, forward.HasBias, args);
        var partials = args.Workspace.WithShape(new TensorShape(x.Dim(0), 2, x.Dim(1)));
        GroupNormKernel.LaunchParameterPartials(this, x, weight, bias, args.Input(args.InputCount - 1), partials,
            forward.Groups, forward.Epsilon, forward.Silu);
        LaunchSumTo(op.Name, partials, args.Output);
    }

    public void Execute(LayerNormInputGradientOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        var (weight, _) = Affine(op.Forward.HasWeight, op.Forward.HasBias, args);
        LaunchRows("layer_norm_backward_input_f32", op.Name, output, length, args.Input(0), Pointer(weight),
            args.Input(args.InputCount - 1), output, length, op.Forward.Epsilon);
    }

    public void Execute(LayerNormParamGradientOp op, in KernelArgs args) =>
        LaunchRowParameterGradients("layer_norm_backward_params_f32", op.Name, args.Input(0), args.Input(args.InputCount - 1),
            args.Workspace, args.Output, op.Forward.Epsilon);

    public void Execute(RmsNormInputGradientOp op, in KernelArgs args)
    {
        var output = args.Output;
        int length = output.Dim(-1);
        LaunchRows("rms_norm_backward_input_f32", op.Name, output, length, args.Input(0), args.Input(1), args.Input(2),
            output, length, op.Forward.Epsilon);
    }

    public void Execute(RmsNormWeightGradientOp op, in KernelArgs args) =>
        LaunchRowParameterGradients("rms_norm_backward_weight_f32", op.Name, args.Input(0), args.Input(2), args.Workspace,
            args.Output, op.Forward.Epsilon);

    /// <summary>
    /// A row normalisation's parameter gradients: one block per chunk of <see cref="NormalizationGradients.RowsPerChunk"/>
    /// rows sums into its workspace row of [chunks, output...], then the chunks are added in order into
    /// <paramref name="output"/> ([2, D] or [D]).
    /// </summary>
    private void LaunchRowParameterGradients(string kernel, string op, Tensor x, Tensor dy, Tensor workspace, Tensor output, float eps)
    {
        int length = x.Dim(-1);
        if (output.ElementCount == 0) return;
        long rows = x.ElementCount / length, chunks = NormalizationGradients.Chunks(x.Shape);
        if (rows > int.MaxValue)
            throw new NotSupportedException($"{op}: {x} has {rows} rows; at most {int.MaxValue} are supported");
        var partials = workspace.WithShape(new TensorShape([(int)chunks, .. output.Shape.Dims]));
        Launch(kernel, (int)chunks, ReductionThreads(length), 0, x, dy, partials, (int)rows, length,
            NormalizationGradients.RowsPerChunk, eps);
        LaunchSumTo(op, partials, output);
    }

    /// <summary>The optional weight and bias of a normalisation op or its gradient op, which read the same inputs.</summary>
    private static (Tensor? Weight, Tensor? Bias) Affine(bool hasWeight, bool hasBias, in KernelArgs args) =>
        (hasWeight ? args.Input(1) : null, hasBias ? args.Input(hasWeight ? 2 : 1) : null);

    private static LaunchArg Pointer(Tensor? tensor) => tensor is { } t ? t : LaunchArg.NullPointer;
}
