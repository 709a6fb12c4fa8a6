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
public sealed class AttentionOp : Op<AttentionOp>
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
        var (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        string shapes = $"q {q}, k {k}, v {v}" + (inputs.Length == 4 ? $", mask {inputs[3]}" : "");
        if (q.DType is not (DType.F32 or DType.F16 or DType.BF16) || k.DType != q.DType || v.DType != q.DType)
            throw Invalid(Name, $"q, k and v must all be F32, all F16 or all BF16 ({shapes})");
        if (q.Shape.Rank != 3 || k.Shape.Rank != 3 || v.Shape.Rank != 3)
            throw Invalid(Name, $"q, k and v must be [batch, tokens, heads*headDim] ({shapes})");
        int batch = q.Shape[0], channels = q.Shape[2];
        if (channels == 0 || channels % Heads != 0)
            throw Invalid(Name, $"q channels {channels} are not a positive multiple of {Heads} heads ({shapes})");
        if (!k.Shape.SameDims(v.Shape))
            throw Invalid(Name, $"k and v must have the same shape ({shapes})");
        if (k.Shape[0] != batch || k.Shape[2] != channels)
            throw Invalid(Name, $"k and v must be [{batch}, keys, {channels}] to match q ({shapes})");
        if (inputs.Length == 4)
        {
            var mask = inputs[3];
            if (mask.DType != DType.I32 || mask.Shape.Rank != 2 || mask.Shape[0] != batch || mask.Shape[1] != k.Shape[1])
                throw Invalid(Name, $"key padding mask must be I32 [{batch}, {k.Shape[1]}] ({shapes})");
        }
        return new TensorDesc(q.DType, new TensorShape(batch, q.Shape[1], channels));
    }
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
