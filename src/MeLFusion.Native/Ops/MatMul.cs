using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Batched matrix product like <c>torch.matmul</c> on rank ≥ 2 operands: [..., M, K] × [..., K, N] → [..., M, N],
/// with the leading (batch) dims broadcast NumPy-style. <see cref="TransposeA"/> reads A stored as [..., K, M],
/// <see cref="TransposeB"/> reads B stored as [..., N, K]. Inputs may be strided views (a permuted or sliced tensor
/// is read in place, e.g. <c>k.transpose(-1, -2)</c>); only F32 is supported.
/// </summary>
public sealed class MatMulOp(bool transposeA, bool transposeB) : Op<MatMulOp>, IDifferentiable
{
    public bool TransposeA { get; } = transposeA;
    public bool TransposeB { get; } = transposeB;

    public override string Name => "matmul";
    public override bool AcceptsStridedInputs => true;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 2) throw Invalid(Name, $"expects 2 inputs (a, b), got {inputs.Length}");
        TensorDesc a = inputs[0], b = inputs[1];
        if (a.DType != DType.F32 || b.DType != DType.F32)
            throw Invalid(Name, $"a is {a} and b is {b}; only F32 is supported");
        if (a.Shape.Rank < 2 || b.Shape.Rank < 2)
            throw Invalid(Name, $"a {a.Shape} and b {b.Shape} must both have rank >= 2 ([..., rows, columns])");
        int m = TransposeA ? a.Shape[-1] : a.Shape[-2];
        int ka = TransposeA ? a.Shape[-2] : a.Shape[-1];
        int kb = TransposeB ? b.Shape[-1] : b.Shape[-2];
        int n = TransposeB ? b.Shape[-2] : b.Shape[-1];
        if (ka != kb)
            throw Invalid(Name, $"inner dims differ: a {a.Shape}{(TransposeA ? "ᵀ" : "")} has K={ka}, b {b.Shape}{(TransposeB ? "ᵀ" : "")} has K={kb}");
        var batch = MatMulShapes.BroadcastBatch(Name, a.Shape, b.Shape);
        return new TensorDesc(DType.F32, new TensorShape([.. batch, m, n]));
    }

    public void Backward(GradientContext context)
    {
        Value a = context.Input(0), b = context.Input(1), dy = context.OutputGradient;
        if (context.NeedsGradient(0)) context.AddGradient(0, MatMulGradient.OfA(context.Graph, a, b, TransposeA, TransposeB, dy));
        if (context.NeedsGradient(1)) context.AddGradient(1, MatMulGradient.OfB(context.Graph, a, b, TransposeA, TransposeB, dy));
    }
}

/// <summary>
/// <c>torch.nn.functional.linear</c>: y = x · Wᵀ + bias with x [..., in], weight [out, in] (PyTorch layout) and an
/// optional bias [out]; y is [..., out]. Only F32 is supported.
/// </summary>
public sealed class LinearOp : Op<LinearOp>, IDifferentiable
{
    public static readonly LinearOp Instance = new();
    private LinearOp() { }

    public override string Name => "linear";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length is not (2 or 3))
            throw Invalid(Name, $"expects 2 or 3 inputs (x, weight, bias?), got {inputs.Length}");
        foreach (var input in inputs)
            if (input.DType != DType.F32)
                throw Invalid(Name, $"inputs are {string.Join(", ", inputs.ToArray())}; only F32 is supported");
        TensorDesc x = inputs[0], weight = inputs[1];
        if (x.Shape.Rank < 1) throw Invalid(Name, $"x {x.Shape} must have rank >= 1 ([..., in])");
        if (weight.Shape.Rank != 2 || weight.Shape[1] != x.Shape[-1])
            throw Invalid(Name, $"weight {weight.Shape} must be [out, {x.Shape[-1]}] for x {x.Shape}");
        int outFeatures = weight.Shape[0];
        if (inputs.Length == 3 && (inputs[2].Shape.Rank != 1 || inputs[2].Shape[0] != outFeatures))
            throw Invalid(Name, $"bias {inputs[2].Shape} must be [{outFeatures}] for weight {weight.Shape}");
        var dims = x.Shape.Dims.ToArray();
        dims[^1] = outFeatures;
        return new TensorDesc(DType.F32, new TensorShape(dims));
    }

    /// <summary>
    /// With every leading dim of x flattened into rows: dx = dy · W, dW = dyᵀ · x (one GEMM that sums over all rows)
    /// and dbias = dy summed over the rows.
    /// </summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        Value x = context.Input(0), weight = context.Input(1), dy = context.OutputGradient;
        int outFeatures = weight.Shape[0], inFeatures = weight.Shape[1];
        var rows = g.Reshape(dy, -1, outFeatures);
        if (context.NeedsGradient(0))
            context.AddGradient(0, g.Reshape(g.MatMul(rows, weight), x.Shape.Dims.ToArray()));
        if (context.NeedsGradient(1))
            context.AddGradient(1, g.MatMul(rows, g.Reshape(x, -1, inFeatures), transposeA: true));
        if (context.InputCount == 3 && context.NeedsGradient(2))
            context.AddGradient(2, g.SumTo(dy, [outFeatures]));
    }
}

/// <summary>
/// The operand gradients of y = op(a) · op(b) (op: optional transpose of the last two dims, batch dims broadcast), each
/// a matmul of dy with the other operand, summed back over the batch dims the operand was broadcast along. Shared by
/// <see cref="MatMulOp"/> and the ops that are a matmul in disguise.
/// </summary>
internal static class MatMulGradient
{
    /// <summary>dL/da: d op(a) = dy · op(b)ᵀ, transposed back when a is read transposed.</summary>
    public static Value OfA(GraphBuilder g, Value a, Value b, bool transposeA, bool transposeB, Value dy)
    {
        var gradient = transposeA ? g.MatMul(b, dy, transposeB, transposeB: true) : g.MatMul(dy, b, transposeB: !transposeB);
        return g.SumTo(gradient, a.Shape.Dims);
    }

    /// <summary>
    /// dL/db: d op(b) = op(a)ᵀ · dy, transposed back when b is read transposed. When b is one matrix shared by the
    /// whole batch and a's rows run through the batch (a [..., M, K] not transposed, not broadcast), the batch sum is
    /// folded into the product: a single GEMM over all batch·M rows instead of one per item and a reduction.
    /// </summary>
    public static Value OfB(GraphBuilder g, Value a, Value b, bool transposeA, bool transposeB, Value dy)
    {
        long outputBatch = BatchCount(dy.Shape);
        if (outputBatch > 1 && BatchCount(b.Shape) == 1 && !transposeA && BatchCount(a.Shape) == outputBatch)
        {
            var aRows = g.Reshape(a, -1, a.Shape[-1]);
            var dyRows = g.Reshape(dy, -1, dy.Shape[-1]);
            var folded = transposeB ? g.MatMul(dyRows, aRows, transposeA: true) : g.MatMul(aRows, dyRows, transposeA: true);
            return g.Reshape(folded, b.Shape.Dims.ToArray());
        }
        var gradient = transposeB ? g.MatMul(dy, a, transposeA: true, transposeB: transposeA) : g.MatMul(a, dy, transposeA: !transposeA);
        return g.SumTo(gradient, b.Shape.Dims);
    }

    /// <summary>Matrices in a batch: the product of all but the last two dims.</summary>
    private static long BatchCount(TensorShape shape)
    {
        long count = 1;
        for (int i = 0; i < shape.Rank - 2; i++) count *= shape[i];
        return count;
    }
}

/// <summary>Shape rules shared by the matmul family.</summary>
internal static class MatMulShapes
{
    /// <summary>The broadcast of the batch dims (all but the last two) of <paramref name="a"/> and <paramref name="b"/>.</summary>
    public static int[] BroadcastBatch(string op, TensorShape a, TensorShape b)
    {
        int rank = Math.Max(a.Rank, b.Rank) - 2;
        var batch = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = BatchDim(a, rank, i), db = BatchDim(b, rank, i);
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{op}: batch dims of a {a} and b {b} do not broadcast ({da} vs {db})");
            batch[i] = da == 1 ? db : da;
        }
        return batch;
    }

    /// <summary>Batch dim <paramref name="index"/> of <paramref name="shape"/> right-aligned to <paramref name="rank"/> batch dims (1 where absent).</summary>
    public static int BatchDim(TensorShape shape, int rank, int index)
    {
        int axis = index - (rank - (shape.Rank - 2));
        return axis < 0 ? 1 : shape[axis];
    }
}

public static class MatMulGraphExtensions
{
    /// <summary>[..., M, K] × [..., K, N] → [..., M, N] with broadcast batch dims; see <see cref="MatMulOp"/>.</summary>
    public static Value MatMul(this GraphBuilder g, Value a, Value b, bool transposeA = false, bool transposeB = false) =>
        g.Apply(new MatMulOp(transposeA, transposeB), a, b);

    /// <summary>x [..., in] · weightᵀ + bias with weight [out, in]; see <see cref="LinearOp"/>.</summary>
    public static Value Linear(this GraphBuilder g, Value x, Value weight, Value? bias = null) =>
        bias is null ? g.Apply(LinearOp.Instance, x, weight) : g.Apply(LinearOp.Instance, x, weight, bias);
}
