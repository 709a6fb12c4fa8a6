using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Row lookup, as <c>F.embedding(ids, table)</c>: ids [..] (i32 or i64) and table [V, D] give [.., D] in the table's
/// dtype. Ids outside [0, V) fail at run time with an <see cref="ArgumentOutOfRangeException"/> naming the id and V.
/// </summary>
public sealed class EmbeddingOp : Op<EmbeddingOp>
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
}

public static class EmbeddingGraphExtensions
{
    /// <summary>Looks up rows of <paramref name="table"/> [V, D] for <paramref name="ids"/> [..] -> [.., D].</summary>
    public static Value Embedding(this GraphBuilder g, Value ids, Value table) => g.Apply(EmbeddingOp.Instance, ids, table);
}
