using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Sums x down to <see cref="TargetDims"/>, the inverse of broadcasting: dims are aligned at the last one, and every
/// dim where the target has 1 (or that the target lacks) is summed over. Used for the gradients of broadcast
/// operands and biases, and for losses (a sum to [1]). Sums are accumulated in double in a fixed order.
/// </summary>
public sealed class ReduceSumOp : Op<ReduceSumOp>, IDifferentiable
{
    public ReduceSumOp(int[] targetDims) => TargetDims = (int[])targetDims.Clone();

    public int[] TargetDims { get; }

    public override string Name => "reduce_sum";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        var x = inputs[0].Shape;
        var target = new TensorShape(TargetDims);
        if (target.Rank > x.Rank && target.ElementCount != 1)
            throw Invalid(Name, $"x {x} cannot be summed to {target}: the target has more dims");
        for (int i = 1; i <= Math.Min(target.Rank, x.Rank); i++)
            if (target[-i] != 1 && target[-i] != x[-i])
                throw Invalid(Name, $"x {x} cannot be summed to {target}: dim -{i} is {x[-i]}, the target's {target[-i]}");
        return new TensorDesc(DType.F32, target);
    }

    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        var x = context.Input(0).Shape;
        var gradient = context.OutputGradient;
        if (TargetDims.Length > x.Rank) gradient = g.Reshape(gradient, [.. Enumerable.Repeat(1, x.Rank)]);
        context.AddGradient(0, g.Contiguous(g.Expand(gradient, x.Dims.ToArray())));
    }
}

public static class ReduceExtensions
{
    /// <summary>x summed down to <paramref name="dims"/> (x itself when it already has them); see <see cref="ReduceSumOp"/>.</summary>
    public static Value SumTo(this GraphBuilder g, Value x, ReadOnlySpan<int> dims) =>
        x.Shape.Dims.SequenceEqual(dims) ? x : g.Apply(new ReduceSumOp(dims.ToArray()), x);

    /// <summary>The sum of all elements of x, as [1].</summary>
    public static Value Sum(this GraphBuilder g, Value x) => g.Apply(new ReduceSumOp([1]), x);

    /// <summary>The mean of all elements of x, as [1].</summary>
    public static Value Mean(this GraphBuilder g, Value x) => g.Scale(g.Sum(x), 1f / Math.Max(1, x.Shape.ElementCount));
}

/// <summary>
/// A reduction of contiguous x to target dims split into the axes that survive (<see cref="Kept"/>, in output order)
/// and the axes summed over (<see cref="Reduced"/>), each with x's element strides, size-1 axes dropped and
/// neighbouring axes merged. Shared by the backends so they iterate the same space.
/// </summary>
public sealed class ReduceAxes
{
    private ReduceAxes(TensorShape kept, TensorShape reduced)
    {
        Kept = kept;
        Reduced = reduced;
    }

    public TensorShape Kept { get; }
    public TensorShape Reduced { get; }

    public static ReduceAxes Of(TensorShape x, ReadOnlySpan<int> targetDims)
    {
        var kept = new List<(int Dim, long Stride)>();
        var reduced = new List<(int Dim, long Stride)>();
        for (int axis = 0; axis < x.Rank; axis++)
        {
            int t = axis - (x.Rank - targetDims.Length);
            int dim = x[axis];
            if (dim == 1) continue;
            var list = t >= 0 && targetDims[t] == dim ? kept : reduced;
            long stride = x.Strides[axis];
            if (list.Count > 0 && list[^1].Stride == stride * dim) list[^1] = (list[^1].Dim * dim, stride);
            else list.Add((dim, stride));
        }
        return new ReduceAxes(Shape(kept), Shape(reduced));
    }

    private static TensorShape Shape(List<(int Dim, long Stride)> axes) =>
        axes.Count == 0 ? new TensorShape([1], [0]) : new TensorShape([.. axes.Select(a => a.Dim)], [.. axes.Select(a => a.Stride)]);
}
