using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// The gradient of a strided view (a slice, or a view of a view): a zero tensor of <see cref="TargetDims"/> (contiguous)
/// with x's elements written where the view <see cref="View"/> (element strides into the target, starting at
/// <see cref="ElementOffset"/>) reads them. The view must address distinct elements; Slice, Permute and Reshape views do.
/// </summary>
public sealed class ViewScatterOp : Op<ViewScatterOp>
{
    public ViewScatterOp(int[] targetDims, TensorShape view, long elementOffset)
    {
        TargetDims = (int[])targetDims.Clone();
        View = view;
        ElementOffset = elementOffset;
        long count = new TensorShape(TargetDims).ElementCount;
        if (elementOffset < 0 || (view.ElementCount > 0 && elementOffset + view.SpanElements > count))
            throw new ArgumentException($"view_scatter: view {view} at offset {elementOffset} leaves a target of {count} elements");
    }

    public int[] TargetDims { get; }
    public TensorShape View { get; }
    public long ElementOffset { get; }

    public override string Name => "view_scatter";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        if (!inputs[0].Shape.SameDims(View))
            throw Invalid(Name, $"x {inputs[0].Shape} must have the view's dims {View}");
        return new TensorDesc(DType.F32, new TensorShape(TargetDims));
    }
}
