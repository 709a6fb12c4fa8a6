using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Batched matrix product like <c>torch.matmul</c> on rank ≥ 2 operands: [..., M, K] × [..., K, N] → [..., M, N],
/// with the leading (batch) dims broadcast NumPy-style. <see cref="TransposeA"/> reads A stored as [..., K, M],
/// <see cref="TransposeB"/> reads B stored as [..., N, K]. Inputs may be strided views (a permuted or sliced tensor
/// is read in place, e.g. <c>k.transpose(-1, -2)</c>); only F32 is supported.
/// </summary>
public sealed class MatMulOp(bool transposeA, bool transposeB) : Op<MatMulOp>
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
}

/// <summary>
/// <c>torch.nn.functional.linear</c>: y = x · Wᵀ + bias with x [..., in], weight [out, in] (PyTorch layout) and an
/// optional bias [out]; y is [..., out]. Only F32 is supported.
/// </summary>
public sealed class LinearOp : Op<LinearOp>
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
