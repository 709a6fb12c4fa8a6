using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Joins tensors along one axis, as <c>torch.cat</c>: every part has the same dtype and rank and equal dims except
/// along the axis (where a part may be empty). Any dtype; the kernel only copies bytes.
/// </summary>
public sealed class ConcatOp : Op<ConcatOp>, IDifferentiable
{
    public ConcatOp(int axis) => Axis = axis;

    /// <summary>The joined axis as given (negative counts from the end).</summary>
    public int Axis { get; }
    public override string Name => "concat";

    /// <summary>The joined axis of rank-<paramref name="rank"/> parts, in [0, rank).</summary>
    public int ResolveAxis(int rank) => Axis < 0 ? Axis + rank : Axis;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length == 0) throw Invalid(Name, "expects at least one part");
        var first = inputs[0];
        int rank = first.Shape.Rank;
        int axis = ResolveAxis(rank);
        if (axis < 0 || axis >= rank) throw Invalid(Name, $"axis {Axis} is out of range for {first}");
        var dims = first.Shape.Dims.ToArray();
        long joined = 0;
        foreach (var part in inputs)
        {
            bool compatible = part.DType == first.DType && part.Shape.Rank == rank;
            for (int a = 0; compatible && a < rank; a++)
                compatible = a == axis || part.Shape[a] == dims[a];
            if (!compatible)
                throw Invalid(Name, $"parts must share dtype and all dims but {axis}, got {string.Join(", ", inputs.ToArray())}");
            joined += part.Shape[axis];
        }
        dims[axis] = checked((int)joined);
        return new TensorDesc(first.DType, new TensorShape(dims));
    }

    /// <summary>Each part's gradient is its band of dy along the axis (a view).</summary>
    public void Backward(GradientContext context)
    {
        int axis = ResolveAxis(context.Output.Shape.Rank);
        int start = 0;
        for (int i = 0; i < context.InputCount; i++)
        {
            int length = context.Input(i).Shape[axis];
            if (context.NeedsGradient(i)) context.AddGradient(i, context.Graph.Slice(context.OutputGradient, axis, start, length));
            start += length;
        }
    }
}

public static class ConcatGraphExtensions
{
    /// <summary>Concatenates <paramref name="parts"/> along <paramref name="axis"/> (negative counts from the end).</summary>
    public static Value Concat(this GraphBuilder g, int axis, params Value[] parts) =>
        g.Apply(new ConcatOp(axis), (Value[])parts.Clone());
}
