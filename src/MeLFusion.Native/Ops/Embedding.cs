using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Row lookup, as <c>F.embedding(ids, table)</c>: ids [..] (i32 or i64) and table [V, D] give [.., D] in the table's
/// dtype. Ids outside [0, V) fail at run time with an <see cref="ArgumentOutOfRangeException"/> naming the id and V.
/// </summary>
public sealed class EmbeddingOp : Op<EmbeddingOp>, IDifferentiable
{
    public static readonly EmbeddingOp Instance = new();
    private EmbeddingOp() { }

    public override string Name => "embedding";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 2) throw Invalid(Name, $"expects ids and table, got {inputs.Length} inputs");
        var (ids, table) = (inputs[0], inputs[1]);
        if (ids.DType is not (DType.I32 or DType.I64)) throw Invalid(Name, $"ids must be i32 or i64, got {ids}");
        if (table.Shape.Rank != 2) throw Invalid(Name, $"table must be [V, D], got {table}");
        var dims = new int[ids.Shape.Rank + 1];
        ids.Shape.Dims.CopyTo(dims);
        dims[^1] = table.Shape[1];
        return new TensorDesc(table.DType, new TensorShape(dims));
    }

    /// <summary>Only the table has a gradient (ids are integers): every row the sum of dy at the positions that read it.</summary>
    public void Backward(GradientContext context)
    {
        var table = context.Input(1);
        context.AddGradient(1, context.Graph.Apply(new EmbeddingGradientOp(table.Shape[0]), context.Input(0), context.OutputGradient));
    }
}

/// <summary>
/// The gradient of an embedding table: ids [..] (i32 or i64) and dy [.., D] f32 give dtable [V, D], row v the sum of
/// dy[i] over the positions i with ids[i] = v, added in position order (deterministic), zero for rows no id reads.
/// Ids outside [0, V) fail at run time as in <see cref="EmbeddingOp"/>.
/// </summary>
public sealed class EmbeddingGradientOp : Op<EmbeddingGradientOp>
{
    public EmbeddingGradientOp(int vocabulary)
    {
        if (vocabulary < 0) throw new ArgumentException($"embedding_backward: vocabulary must be non-negative, got {vocabulary}");
        Vocabulary = vocabulary;
    }

    /// <summary>V, the table's rows.</summary>
    public int Vocabulary { get; }

    public override string Name => "embedding_backward";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 2) throw Invalid(Name, $"expects ids and dy, got {inputs.Length} inputs");
        var (ids, dy) = (inputs[0], inputs[1]);
        if (ids.DType is not (DType.I32 or DType.I64)) throw Invalid(Name, $"ids must be i32 or i64, got {ids}");
        if (dy.DType != DType.F32) throw Invalid(Name, $"dy must be f32, got {dy}");
        if (dy.Shape.Rank != ids.Shape.Rank + 1 || !dy.Shape.Dims[..^1].SequenceEqual(ids.Shape.Dims))
            throw Invalid(Name, $"dy must be [ids dims.., D], got ids {ids} and dy {dy}");
        return new TensorDesc(DType.F32, new TensorShape(Vocabulary, dy.Shape[-1]));
    }
}

public static class EmbeddingGraphExtensions
{
    /// <summary>Looks up rows of <paramref name="table"/> [V, D] for <paramref name="ids"/> [..] -> [.., D].</summary>
    public static Value Embedding(this GraphBuilder g, Value ids, Value table) => g.Apply(EmbeddingOp.Instance, ids, table);
}
