using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Text;

/// <summary>
/// T5 v1.1 encoder hyper-parameters (FLAN-T5: gated feed-forward with tanh-approximated GELU, untied RMS norms,
/// bidirectional bucketed relative-position bias).
/// </summary>
public sealed record T5Config(
    int VocabSize,
    int ModelDim,
    int KeyValueDim,
    int Heads,
    int Layers,
    int FeedForwardDim,
    int RelativeBuckets = 32,
    int RelativeMaxDistance = 128,
    float Epsilon = 1e-6f)
{
    /// <summary>google/flan-t5-large, the text encoder of Tango and MeLFusion (spec §2.3).</summary>
    public static T5Config FlanT5Large { get; } = new(32128, 1024, 64, 16, 24, 2816);

    /// <summary>Width of the attention projections (heads × d_kv); equals d_model for FLAN-T5 but need not.</summary>
    public int InnerDim => Heads * KeyValueDim;
}

/// <summary>
/// The T5 encoder stack as HF's <c>T5EncoderModel</c>: token embedding; per block
/// <c>x += o(attention(RMSNorm(x)))</c> with no 1/√d scaling and the layer-0 relative-position bias shared by all
/// blocks, then <c>x += wo(gelu_tanh(wi_0 h) · wi_1 h)</c> on <c>h = RMSNorm(x)</c>; a final RMS norm.
/// Attention runs unfused (matmul, add bias, softmax, matmul) because T5 adds a per-head bias to the scores.
/// The position-bucket table and the mask lookup table are made on the host and kept as constants, so this object
/// must outlive every plan compiled from a graph it built.
/// </summary>
public sealed class T5Encoder(T5Config config) : IDisposable
{
    /// <summary>Bias of a padded key: HF's <c>torch.finfo(torch.float32).min</c>.</summary>
    private const float MaskedKeyBias = float.MinValue;

    private readonly HostConstants _constants = new();

    public T5Config Config { get; } = config;

    /// <summary>
    /// Builds the encoder on token <paramref name="ids"/> [B, L] and key padding <paramref name="mask"/> [B, L]
    /// (both I32; mask 1 = token, 0 = padding; any other mask value fails at run time) and returns the last hidden
    /// state [B, L, d_model]. Padded positions are computed too (as HF does); they attend to the unpadded keys.
    /// <paramref name="prefix"/> is prepended to every weight name ("text_encoder." in Tango checkpoints).
    /// </summary>
    public Value Build(GraphBuilder g, WeightSet weights, Value ids, Value mask, string prefix = "")
    {
        var c = Config;
        if (ids.DType != DType.I32 || ids.Shape.Rank != 2 || ids.Shape[1] < 1)
            throw new ArgumentException($"t5 encoder: ids must be I32 [B, L] with L >= 1, got {ids.Desc}");
        if (mask.DType != DType.I32 || !mask.Shape.SameDims(ids.Shape))
            throw new ArgumentException($"t5 encoder: mask must be I32 with the shape of ids {ids.Shape}, got {mask.Desc}");
        int batch = ids.Shape[0], length = ids.Shape[1];
        Value W(string name, params int[] dims) => weights.Constant(g, prefix + name, dims);

        // T5EncoderModel checkpoints hold the tied embedding as shared.weight, encoder.embed_tokens.weight or both.
        string embedding = !weights.Contains(prefix + "shared.weight") && weights.Contains(prefix + "encoder.embed_tokens.weight")
            ? "encoder.embed_tokens.weight" : "shared.weight";
        var x = g.Embedding(ids, W(embedding, c.VocabSize, c.ModelDim));
        var bias = AttentionBias(g, weights.Backend, mask, batch, length,
            W("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", c.RelativeBuckets, c.Heads));
        for (int i = 0; i < c.Layers; i++)
        {
            string block = $"encoder.block.{i}.layer.";
            x = SelfAttention(g, W, x, bias, block + "0.", batch, length);
            x = FeedForward(g, W, x, block + "1.");
        }
        return g.RmsNorm(x, W("encoder.final_layer_norm.weight", c.ModelDim), c.Epsilon);
    }

    /// <summary>
    /// Relative-position bias [H, L, L] plus the key padding bias [B, 1, 1, L]: [B, H, L, L], added to every block's
    /// scores (HF's <c>position_bias</c> after the mask is folded in).
    /// </summary>
    private Value AttentionBias(GraphBuilder g, IBackend backend, Value mask, int batch, int length, Value relativeBias)
    {
        var c = Config;
        var buckets = _constants.Get(g, backend, $"t5.relative_position_buckets.{length}", [length, length],
            () => RelativePositionBuckets(length, length, c.RelativeBuckets, c.RelativeMaxDistance));
        var positionBias = g.Permute(g.Embedding(buckets, relativeBias), 2, 0, 1);
        // mask 0 -> finfo.min, mask 1 -> 0, exactly HF's (1 - mask) * finfo.min, as a two-row lookup.
        var maskTable = _constants.Get(g, backend, "t5.key_padding_bias", [2, 1], () => new[] { MaskedKeyBias, 0f });
        var maskBias = g.Reshape(g.Embedding(mask, maskTable), batch, 1, 1, length);
        return g.Add(positionBias, maskBias);
    }

    private Value SelfAttention(GraphBuilder g, Func<string, int[], Value> w, Value x, Value bias, string layer, int batch, int length)
    {
        var c = Config;
        var h = g.RmsNorm(x, w(layer + "layer_norm.weight", [c.ModelDim]), c.Epsilon);
        // [B, L, H·d_kv] -> [B, H, L, d_kv] as a view; the matmuls read it strided.
        Value Heads(string projection) =>
            g.Permute(g.Reshape(g.Linear(h, w($"{layer}SelfAttention.{projection}.weight", [c.InnerDim, c.ModelDim])),
                batch, length, c.Heads, c.KeyValueDim), 0, 2, 1, 3);
        var scores = g.Add(g.MatMul(Heads("q"), Heads("k"), transposeB: true), bias);
        var context = g.MatMul(g.Softmax(scores), Heads("v"));
        var merged = g.Reshape(g.Permute(context, 0, 2, 1, 3), batch, length, c.InnerDim);
        return g.Add(x, g.Linear(merged, w(layer + "SelfAttention.o.weight", [c.ModelDim, c.InnerDim])));
    }

    private Value FeedForward(GraphBuilder g, Func<string, int[], Value> w, Value x, string layer)
    {
        var c = Config;
        var h = g.RmsNorm(x, w(layer + "layer_norm.weight", [c.ModelDim]), c.Epsilon);
        var gate = g.Gelu(g.Linear(h, w(layer + "DenseReluDense.wi_0.weight", [c.FeedForwardDim, c.ModelDim])), tanhApproximation: true);
        var hidden = g.Mul(gate, g.Linear(h, w(layer + "DenseReluDense.wi_1.weight", [c.FeedForwardDim, c.ModelDim])));
        return g.Add(x, g.Linear(hidden, w(layer + "DenseReluDense.wo.weight", [c.ModelDim, c.FeedForwardDim])));
    }

    /// <summary>
    /// HF's <c>T5Attention._relative_position_bucket(bidirectional=True)</c>: half the buckets for keys after the
    /// query; within a half, exact buckets for distances below a quarter of the buckets and logarithmic ones up to
    /// <paramref name="maxDistance"/>, beyond which all share the last bucket. The logarithm is taken in f32 in torch's
    /// operation order, so distances on a bucket boundary land where torch puts them.
    /// </summary>
    public static int RelativePositionBucket(int relativePosition, int buckets = 32, int maxDistance = 128)
    {
        int half = buckets / 2;
        int maxExact = half / 2;
        if (maxExact < 1 || maxDistance <= maxExact)
            throw new ArgumentOutOfRangeException(nameof(buckets), $"t5 relative position: needs buckets >= 4 and max distance > buckets / 4, got {buckets} and {maxDistance}");
        int bucket = relativePosition > 0 ? half : 0;
        int distance = Math.Abs(relativePosition);
        if (distance < maxExact) return bucket + distance;
        float logarithmic = MathF.Log((float)distance / maxExact) / (float)Math.Log((double)maxDistance / maxExact) * (half - maxExact);
        return bucket + Math.Min(maxExact + (int)logarithmic, half - 1);
    }

    /// <summary>Bucket of key j relative to query i (relative position j - i), row-major [queries, keys].</summary>
    public static int[] RelativePositionBuckets(int queries, int keys, int buckets = 32, int maxDistance = 128)
    {
        var table = new int[queries * keys];
        for (int i = 0; i < queries; i++)
            for (int j = 0; j < keys; j++)
                table[i * keys + j] = RelativePositionBucket(j - i, buckets, maxDistance);
        return table;
    }

    public void Dispose() => _constants.Dispose();
}
