using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Fused multi-head scaled-dot-product attention: softmax(Q·Kᵀ·scale + mask)·V per head, computed without ever
/// materialising the N×M score matrix.
/// <para>
/// Inputs are token-major, exactly as separate to_q / to_k / to_v linear layers produce them: q [B, N, H·D],
/// k and v [B, M, H·D] (head h owns channels [h·D, (h+1)·D)), and an optional key padding mask [B, M] of I32
/// (nonzero = attend, 0 = ignore the key). The output is [B, N, H·D] in the same layout, so no permute copies are
/// needed on either side. q, k and v are all F32, all F16 or all BF16, and the output has their type; 16-bit inputs
/// are computed with f32 accumulation and an f32 softmax (on a GPU through tensor cores).
/// </para>
/// <para>
/// A query row whose keys are all masked (or M = 0) has nothing to attend to; its output is defined as zeros
/// (PyTorch produces NaN there).
/// </para>
/// </summary>
public sealed class AttentionOp : Op<AttentionOp>, IDifferentiable
{
    public AttentionOp(int heads, float? scale = null)
    {
        if (heads <= 0) throw new ArgumentOutOfRangeException(nameof(heads), heads, "attention: heads must be positive");
        if (scale is { } s && !float.IsFinite(s))
            throw new ArgumentOutOfRangeException(nameof(scale), s, "attention: scale must be finite");
        Heads = heads;
        Scale = scale;
    }

    public int Heads { get; }

    /// <summary>Multiplier of Q·Kᵀ; null means 1/√D.</summary>
    public float? Scale { get; }

    public override string Name => "attention";

    /// <summary>The scale actually applied for head dimension <paramref name="headDim"/>.</summary>
    public float ScaleFor(int headDim) => Scale ?? 1f / MathF.Sqrt(headDim);

    /// <summary>Per-head channel count D of the validated inputs.</summary>
    public int HeadDim(ReadOnlySpan<TensorDesc> inputs) => inputs[0].Shape[2] / Heads;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length is not (3 or 4))
            throw Invalid(Name, $"expects q, k, v and an optional key padding mask, got {inputs.Length} inputs");
        return ValidateOperands(Name, Heads, inputs[0], inputs[1], inputs[2], inputs.Length == 4 ? inputs[3] : null, "");
    }

    /// <summary>
    /// Appends the two flash-style backward ops: <see cref="AttentionQueryGradientOp"/> for dq and
    /// <see cref="AttentionKeyValueGradientOp"/> for dk and dv (one packed output, split here into views). Both recompute
    /// the softmax from q and k rather than keeping the N×M weights of the forward pass. The mask gets no gradient.
    /// The gradient is F32 only: for F16 or BF16 inputs the gradient ops reject them (ArgumentException naming the type).
    /// </summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        var operands = new List<Value> { context.Input(0), context.Input(1), context.Input(2), context.Output, context.OutputGradient };
        if (context.InputCount == 4) operands.Add(context.Input(3));
        if (context.NeedsGradient(0))
            context.AddGradient(0, g.Apply(new AttentionQueryGradientOp(Heads, Scale), [.. operands]));
        if (!context.NeedsGradient(1) && !context.NeedsGradient(2)) return;
        var keyValueGradient = g.Apply(new AttentionKeyValueGradientOp(Heads, Scale), [.. operands]);
        int[] keyDims = context.Input(1).Shape.Dims.ToArray();
        for (int input = 1; input <= 2; input++)
            if (context.NeedsGradient(input))
                context.AddGradient(input, g.Reshape(g.Slice(keyValueGradient, 0, input - 1, 1), keyDims));
    }

    /// <summary>
    /// Validates q [B, N, H·D], k and v [B, M, H·D] (all F32, all F16 or all BF16) and the optional I32 key padding mask
    /// [B, M] for op <paramref name="op"/>; returns the attention output's desc, [B, N, H·D] of q's type.
    /// <paramref name="extraShapes"/> is appended to the shapes quoted in messages.
    /// </summary>
    internal static TensorDesc ValidateOperands(string op, int heads, TensorDesc q, TensorDesc k, TensorDesc v, TensorDesc? keyMask,
        string extraShapes)
    {
        string shapes = $"q {q}, k {k}, v {v}" + (keyMask is { } m ? $", mask {m}" : "") + extraShapes;
        if (q.DType is not (DType.F32 or DType.F16 or DType.BF16) || k.DType != q.DType || v.DType != q.DType)
            throw Invalid(op, $"q, k and v must all be F32, all F16 or all BF16 ({shapes})");
        if (q.Shape.Rank != 3 || k.Shape.Rank != 3 || v.Shape.Rank != 3)
            throw Invalid(op, $"q, k and v must be [batch, tokens, heads*headDim] ({shapes})");
        int batch = q.Shape[0], channels = q.Shape[2];
        if (channels == 0 || channels % heads != 0)
            throw Invalid(op, $"q channels {channels} are not a positive multiple of {heads} heads ({shapes})");
        if (!k.Shape.SameDims(v.Shape))
            throw Invalid(op, $"k and v must have the same shape ({shapes})");
        if (k.Shape[0] != batch || k.Shape[2] != channels)
            throw Invalid(op, $"k and v must be [{batch}, keys, {channels}] to match q ({shapes})");
        if (keyMask is { } mask &&
            (mask.DType != DType.I32 || mask.Shape.Rank != 2 || mask.Shape[0] != batch || mask.Shape[1] != k.Shape[1]))
            throw Invalid(op, $"key padding mask must be I32 [{batch}, {k.Shape[1]}] ({shapes})");
        return new TensorDesc(q.DType, new TensorShape(batch, q.Shape[1], channels));
    }
}

/// <summary>
/// What the two attention backward ops share: the forward op's parameters and their inputs, which are the forward's
/// q [B, N, H·D], k, v [B, M, H·D], its output o and the output's gradient dy (both [B, N, H·D]), all F32 (the
/// gradient of a 16-bit attention is not supported), then the optional key padding mask. Both recompute the softmax weights P from q and k a tile at a time, with
/// dS = P ∘ (dy·vᵀ − rowsum(dy ∘ o)) the gradient of the scores; query rows with every key masked give zeros, matching
/// the forward's zero output there.
/// </summary>
public abstract class AttentionGradientOp<TSelf> : Op<TSelf> where TSelf : AttentionGradientOp<TSelf>
{
    protected AttentionGradientOp(int heads, float? scale)
    {
        Forward = new AttentionOp(heads, scale);
    }

    /// <summary>The forward op whose gradient this computes (heads and scale).</summary>
    public AttentionOp Forward { get; }

    public int Heads => Forward.Heads;
    public float? Scale => Forward.Scale;

    /// <summary>Index of the optional key padding mask among the inputs.</summary>
    public const int MaskInput = 5;

    /// <summary>Validates q, k, v, o, dy and the optional mask; returns the forward output's desc [B, N, H·D].</summary>
    protected TensorDesc ValidateInputs(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length is not (5 or 6))
            throw Invalid(Name, $"expects q, k, v, the attention output o, its gradient dy and an optional key padding mask, got {inputs.Length} inputs");
        var (o, dy) = (inputs[3], inputs[4]);
        string extra = $", o {o}, dy {dy}";
        var output = AttentionOp.ValidateOperands(Name, Heads, inputs[0], inputs[1], inputs[2],
            inputs.Length > MaskInput ? inputs[MaskInput] : null, extra);
        if (output.DType != DType.F32)
            throw Invalid(Name, $"the attention gradient is F32 only, q, k and v are {output.DType} (q {inputs[0]}, k {inputs[1]}, v {inputs[2]}{extra})");
        if (o.DType != DType.F32 || !o.Shape.SameDims(output.Shape) || dy.DType != DType.F32 || !dy.Shape.SameDims(output.Shape))
            throw Invalid(Name, $"o and dy must be F32 {output.Shape} like the attention output (q {inputs[0]}{extra})");
        return output;
    }
}

/// <summary>dq [B, N, H·D] of <see cref="AttentionOp"/>: dq = scale · dS·K per head, one pass over the keys per query tile.</summary>
public sealed class AttentionQueryGradientOp(int heads, float? scale = null) : AttentionGradientOp<AttentionQueryGradientOp>(heads, scale)
{
    public override string Name => "attention_query_gradient";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs) => ValidateInputs(inputs);
}

/// <summary>
/// dk and dv of <see cref="AttentionOp"/>, packed as [2, B, M, H·D] (dk first): dv = Pᵀ·dy and dk = scale · dSᵀ·Q per
/// head, computed per key tile over all queries. P needs each query row's softmax statistics (log-sum-exp) and
/// rowsum(dy ∘ o) first; they are computed once into the workspace, [2, B, H, N] floats.
/// </summary>
public sealed class AttentionKeyValueGradientOp(int heads, float? scale = null) : AttentionGradientOp<AttentionKeyValueGradientOp>(heads, scale)
{
    public override string Name => "attention_key_value_gradient";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        ValidateInputs(inputs);
        var k = inputs[1].Shape;
        return new TensorDesc(DType.F32, new TensorShape(2, k[0], k[1], k[2]));
    }

    /// <summary>
    /// Floats of the per-query-row statistics for queries of shape <paramref name="q"/>: the log-sum-exp of each
    /// (batch, head, query) row's scaled scores, then each row's rowsum(dy ∘ o); [2, B·H, N].
    /// </summary>
    public long RowStatisticsFloats(TensorShape q) => 2L * q[0] * Heads * q[1];

    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        RowStatisticsFloats(inputs[0].Shape) * sizeof(float);
}

public static class AttentionGraphExtensions
{
    /// <summary>
    /// Multi-head attention of <paramref name="q"/> [B, N, H·D] over <paramref name="k"/>, <paramref name="v"/>
    /// [B, M, H·D] with <paramref name="heads"/> = H; optional <paramref name="keyPaddingMask"/> [B, M] I32
    /// (0 = masked key) and <paramref name="scale"/> (default 1/√D). Returns [B, N, H·D].
    /// </summary>
    public static Value Attention(this GraphBuilder g, Value q, Value k, Value v, int heads,
        Value? keyPaddingMask = null, float? scale = null)
    {
        var op = new AttentionOp(heads, scale);
        return keyPaddingMask is null ? g.Apply(op, q, k, v) : g.Apply(op, q, k, v, keyPaddingMask);
    }
}
