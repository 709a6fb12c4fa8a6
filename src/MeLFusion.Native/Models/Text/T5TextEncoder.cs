using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Text;

/// <summary>
/// A tokenized, padded batch: <see cref="Ids"/> and <see cref="Mask"/> are row-major [Batch, Length]; mask 1 marks a
/// token (the EOS included), 0 padding (id 0).
/// </summary>
public sealed record T5Tokens(int Batch, int Length, int[] Ids, int[] Mask);

/// <summary>
/// The encoder's output for a batch: <see cref="HiddenStates"/> row-major [Batch, Length, ModelDim] (padded positions
/// included, as HF computes them) and the <see cref="Tokens"/> with the padding mask the consumer needs.
/// </summary>
public sealed record T5TextEncoding(T5Tokens Tokens, int ModelDim, float[] HiddenStates)
{
    public int Batch => Tokens.Batch;
    public int Length => Tokens.Length;
}

/// <summary>
/// Prompts to T5 hidden states on the host: tokenizes like HF's T5 tokenizer with <c>truncation=True</c> (SentencePiece
/// pieces, at most max length - 1 of them, then EOS), pads with id 0 (T5's pad) to the longest prompt or to a requested length,
/// and runs the encoder. One compiled plan is kept per (batch, length) and reused. The empty prompt "" encodes to EOS
/// alone: the unconditional embedding of classifier-free guidance.
/// </summary>
public sealed class T5TextEncoder : IDisposable
{
    /// <summary>FLAN-T5's <c>model_max_length</c>.</summary>
    public const int DefaultMaxLength = 512;

    private readonly WeightSet _weights;
    private readonly SentencePieceTokenizer _tokenizer;
    private readonly T5Encoder _encoder;
    private readonly string _prefix;
    private readonly Dictionary<(int Batch, int Length), ExecutionPlan> _plans = [];

    /// <param name="weights">The encoder weights; owned by the caller and used until this is disposed.</param>
    /// <param name="prefix">Prepended to every weight name ("text_encoder." in Tango checkpoints).</param>
    public T5TextEncoder(WeightSet weights, SentencePieceTokenizer tokenizer, T5Config config, string prefix = "",
        int maxLength = DefaultMaxLength)
    {
        if (maxLength < 1) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "t5 text encoder: max length must be at least 1");
        if (tokenizer.EosId < 0) throw new ArgumentException("t5 text encoder: the tokenizer has no end-of-sequence piece");
        if (tokenizer.VocabularySize > config.VocabSize)
            throw new ArgumentException($"t5 text encoder: the tokenizer has {tokenizer.VocabularySize} pieces, the model only {config.VocabSize} embeddings");
        _weights = weights;
        _tokenizer = tokenizer;
        _encoder = new T5Encoder(config);
        _prefix = prefix;
        MaxLength = maxLength;
    }

    public int MaxLength { get; }
    public T5Config Config => _encoder.Config;

    /// <summary>How many (batch, length) plans have been compiled so far.</summary>
    public int CompiledPlanCount => _plans.Count;

    /// <summary>
    /// Tokenizes <paramref name="prompts"/>, each truncated to <see cref="MaxLength"/> tokens (or to
    /// <paramref name="padToLength"/>), and pads them to the longest, or to exactly <paramref name="padToLength"/>
    /// when given (HF's <c>padding="max_length"</c>; Tango pads the unconditional batch to the conditional length).
    /// </summary>
    public T5Tokens Tokenize(IReadOnlyList<string> prompts, int? padToLength = null)
    {
        if (prompts.Count == 0) throw new ArgumentException("t5 text encoder: no prompts", nameof(prompts));
        if (padToLength is < 1 || padToLength > MaxLength)
            throw new ArgumentOutOfRangeException(nameof(padToLength), padToLength, $"t5 text encoder: pad length must be in [1, {MaxLength}]");
        int limit = padToLength ?? MaxLength;
        var rows = prompts.Select(p =>
        {
            int[] pieces = _tokenizer.Encode(p, appendEos: false);
            int[] row = [.. pieces.AsSpan(0, Math.Min(pieces.Length, limit - 1)), _tokenizer.EosId];
            return row;
        }).ToArray();
        int length = padToLength ?? rows.Max(r => r.Length);
        var ids = new int[rows.Length * length];
        var mask = new int[ids.Length];
        for (int b = 0; b < rows.Length; b++)
        {
            rows[b].CopyTo(ids, b * length);
            mask.AsSpan(b * length, rows[b].Length).Fill(1);
        }
        return new T5Tokens(rows.Length, length, ids, mask);
    }

    /// <summary>Tokenizes <paramref name="prompts"/> (see <see cref="Tokenize"/>) and encodes them.</summary>
    public T5TextEncoding Encode(IReadOnlyList<string> prompts, int? padToLength = null, CancellationToken cancellation = default) =>
        Encode(Tokenize(prompts, padToLength), cancellation);

    /// <summary>Runs the encoder on already tokenized <paramref name="tokens"/>.</summary>
    public T5TextEncoding Encode(T5Tokens tokens, CancellationToken cancellation = default)
    {
        var plan = Plan(tokens.Batch, tokens.Length);
        plan.SetInput<int>("ids", tokens.Ids);
        plan.SetInput<int>("mask", tokens.Mask);
        plan.Run(cancellation);
        return new T5TextEncoding(tokens, Config.ModelDim, plan.ReadOutput<float>("hidden"));
    }

    private ExecutionPlan Plan(int batch, int length)
    {
        if (_plans.TryGetValue((batch, length), out var plan)) return plan;
        var g = new GraphBuilder();
        var ids = g.Input("ids", DType.I32, batch, length);
        var mask = g.Input("mask", DType.I32, batch, length);
        g.Output("hidden", _encoder.Build(g, _weights, ids, mask, _prefix));
        plan = g.Compile(_weights.Backend);
        _plans.Add((batch, length), plan);
        return plan;
    }

    public void Dispose()
    {
        foreach (var plan in _plans.Values) plan.Dispose();
        _plans.Clear();
        _encoder.Dispose();
    }
}
