using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Models;

public sealed class T5EncoderTests : IDisposable
{
    /// <summary>The reference's tiny config (tools/reference/t5.py): d_model 40 ≠ heads·d_kv 48, odd widths.</summary>
    private static readonly T5Config Tiny = new(200, 40, 12, 4, 3, 72);

    // Three blocks of f32 matmuls (K ≤ 72) with different summation orders and RMS norms that rescale to unit
    // variance: differences stay around 1e-6 of hidden states up to 3.8 (measured max 1.9e-6). The tanh-vs-erf
    // GELU mix-up alone moves them by 1.2e-3, far outside these bounds.
    private const float Atol = 2e-5f, Rtol = 1e-4f;

    private static readonly string WeightsPath = Path.Combine(Fixture.Directory, "t5.safetensors");
    private static readonly string TokenizerPath = Path.Combine(Fixture.Directory, "tokenizer", "spiece.model");
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-t5-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void MatchesPyTorchEncoderIncludingPaddedPositions(string backendName)
    {
        using var fixture = Fixture.Open("t5");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, WeightsPath);
        Check.Close(fixture.F32("expected.hidden"), RunEncoder(backend, weights, fixture, ""), Atol, Rtol, "t5 hidden states");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ReadsPrefixedWeightsWithTheTiedEmbeddingAlias(string backendName)
    {
        using var fixture = Fixture.Open("t5");
        string path = RewriteWeights("tango.safetensors", name => name == "shared.weight"
            ? "text_encoder.encoder.embed_tokens.weight" : "text_encoder." + name);
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, path);
        Assert.False(weights.Contains("text_encoder.shared.weight"));
        Check.Close(fixture.F32("expected.hidden"), RunEncoder(backend, weights, fixture, "text_encoder."), Atol, Rtol, "t5 hidden states");
    }

    [Theory]
    [InlineData("buckets.t5", 32, 128)]
    [InlineData("buckets.small", 10, 20)]
    public void RelativePositionBucketsMatchTorch(string expectedName, int buckets, int maxDistance)
    {
        using var fixture = Fixture.Open("t5");
        var positions = fixture.I32("buckets.relative_position");
        Assert.Equal(401, positions.Length);
        var actual = positions.Select(p => T5Encoder.RelativePositionBucket(p, buckets, maxDistance)).ToArray();
        Assert.Equal(fixture.I32(expectedName), actual);
    }

    [Fact]
    public void BucketTableIsKeyMinusQuery()
    {
        var table = T5Encoder.RelativePositionBuckets(3, 5);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++)
                Assert.Equal(T5Encoder.RelativePositionBucket(j - i), table[i * 5 + j]);
        Assert.Equal([0, 17, 18, 19, 20], table[..5]);
    }

    [Theory]
    [InlineData("encoder.block.2.layer.1.DenseReluDense.wo.weight")]
    [InlineData("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")]
    [InlineData("encoder.final_layer_norm.weight")]
    public void MissingWeightIsNamed(string missing)
    {
        string path = RewriteWeights("missing.safetensors", name => name == missing ? null : name);
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, path);
        using var encoder = new T5Encoder(Tiny);
        var (g, ids, mask) = Inputs(3, 9);
        var error = Assert.Throws<CheckpointException>(() => encoder.Build(g, weights, ids, mask));
        Assert.Contains($"'{missing}'", error.Message);
    }

    [Fact]
    public void MissingEmbeddingNamesTheSharedWeight()
    {
        string path = RewriteWeights("noembedding.safetensors", name => name == "shared.weight" ? null : name);
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, path);
        using var encoder = new T5Encoder(Tiny);
        var (g, ids, mask) = Inputs(1, 4);
        Assert.Contains("'shared.weight'", Assert.Throws<CheckpointException>(() => encoder.Build(g, weights, ids, mask)).Message);
    }

    [Fact]
    public void MisshapenWeightIsNamedWithBothShapes()
    {
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, WeightsPath);
        // Same file, a config whose feed-forward is wider than the checkpoint's.
        using var encoder = new T5Encoder(Tiny with { FeedForwardDim = 80 });
        var (g, ids, mask) = Inputs(2, 5);
        var error = Assert.Throws<CheckpointException>(() => encoder.Build(g, weights, ids, mask));
        Assert.Contains("'encoder.block.0.layer.1.DenseReluDense.wi_0.weight'", error.Message);
        Assert.Contains("[72, 40]", error.Message);
        Assert.Contains("[80, 40]", error.Message);
    }

    [Fact]
    public void RejectsBadIdsAndMask()
    {
        using var encoder = new T5Encoder(Tiny);
        var g = new GraphBuilder();
        var ids = g.Input("ids", DType.I32, 2, 7);
        Assert.Contains("[2, 6]", Assert.Throws<ArgumentException>(() => encoder.Build(g, null!, ids, g.Input("m1", DType.I32, 2, 6))).Message);
        Assert.Contains("I32", Assert.Throws<ArgumentException>(() => encoder.Build(g, null!, ids, g.Input("m2", DType.F32, 2, 7))).Message);
        Assert.Contains("ids", Assert.Throws<ArgumentException>(() => encoder.Build(g, null!, g.Input("ids3", DType.I32, 2, 7, 1), ids)).Message);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void TextEncoderTokenizesPadsAndMatchesPyTorch(string backendName)
    {
        using var fixture = Fixture.Open("t5");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, WeightsPath);
        using var encoder = new T5TextEncoder(weights, SentencePieceTokenizer.Load(TokenizerPath), Tiny);
        var prompts = Enumerable.Range(0, fixture.MetaInt("prompts")).Select(i => fixture.Meta($"prompt{i}")).ToArray();
        Assert.Equal("", prompts[^1]);

        var encoding = encoder.Encode(prompts);
        Assert.Equal(fixture.Shape("input.ids"), new[] { encoding.Batch, encoding.Length });
        Assert.Equal(fixture.I32("input.ids"), encoding.Tokens.Ids);
        Assert.Equal(fixture.I32("input.mask"), encoding.Tokens.Mask);
        Assert.Equal(encoding.Batch * encoding.Length * Tiny.ModelDim, encoding.HiddenStates.Length);
        Check.Close(fixture.F32("expected.hidden"), encoding.HiddenStates, Atol, Rtol, "t5 text encoder hidden states");
    }

    [Fact]
    public void TextEncoderReusesOnePlanPerShape()
    {
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, WeightsPath);
        using var encoder = new T5TextEncoder(weights, SentencePieceTokenizer.Load(TokenizerPath), Tiny);
        var first = encoder.Encode(["a calm piano piece", "dark drums"]);
        Assert.Equal(1, encoder.CompiledPlanCount);
        var again = encoder.Encode(["a calm piano piece", "dark drums"]);
        Assert.Equal(1, encoder.CompiledPlanCount);
        Assert.Equal(first.HiddenStates, again.HiddenStates);

        // Same (batch, length), other tokens: same plan, and the result is the one a fresh plan gives.
        var tokens = encoder.Tokenize(["dark drums", "a calm piano piece"]);
        Assert.Equal((first.Batch, first.Length), (tokens.Batch, tokens.Length));
        var swapped = encoder.Encode(tokens);
        Assert.Equal(1, encoder.CompiledPlanCount);
        using var fresh = new T5TextEncoder(weights, SentencePieceTokenizer.Load(TokenizerPath), Tiny);
        Assert.Equal(fresh.Encode(tokens).HiddenStates, swapped.HiddenStates);

        encoder.Encode([""]);
        Assert.Equal(2, encoder.CompiledPlanCount);
        encoder.Encode(["a calm piano piece", "dark drums"]);
        Assert.Equal(2, encoder.CompiledPlanCount);
    }

    [Fact]
    public void TokenizeTruncatesBeforeEosAndPadsToARequestedLength()
    {
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, WeightsPath);
        var tokenizer = SentencePieceTokenizer.Load(TokenizerPath);
        const string prompt = "A calm jazz piece with piano and double bass.";
        int[] pieces = tokenizer.Encode(prompt, appendEos: false);
        Assert.True(pieces.Length > 8);

        using var short8 = new T5TextEncoder(weights, tokenizer, Tiny, maxLength: 8);
        var truncated = short8.Tokenize([prompt, ""]);
        Assert.Equal(8, truncated.Length);
        Assert.Equal([.. pieces[..7], tokenizer.EosId], truncated.Ids[..8]);
        Assert.Equal([tokenizer.EosId, 0, 0, 0, 0, 0, 0, 0], truncated.Ids[8..]);
        Assert.Equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], truncated.Mask);

        // The unconditional batch padded to the conditional length, as Tango does for guidance.
        using var encoder = new T5TextEncoder(weights, tokenizer, Tiny);
        var unconditional = encoder.Tokenize(["", ""], padToLength: 5);
        Assert.Equal([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], unconditional.Ids);
        Assert.Equal([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], unconditional.Mask);
        var cut = encoder.Tokenize([prompt], padToLength: 4);
        Assert.Equal([.. pieces[..3], tokenizer.EosId], cut.Ids);
        Assert.Throws<ArgumentOutOfRangeException>(() => encoder.Tokenize([prompt], padToLength: 513));
        Assert.Throws<ArgumentException>(() => encoder.Tokenize([]));
    }

    private static float[] RunEncoder(IBackend backend, WeightSet weights, Fixture fixture, string prefix)
    {
        using var encoder = new T5Encoder(Tiny);
        int[] shape = fixture.Shape("input.ids");
        return OpRunner.Run(backend, (g, inputs) => encoder.Build(g, weights, inputs[0], inputs[1], prefix),
            new OpRunner.Feed("ids", shape, fixture.I32("input.ids").Select(i => (float)i).ToArray(), DType.I32),
            new OpRunner.Feed("mask", shape, fixture.I32("input.mask").Select(i => (float)i).ToArray(), DType.I32));
    }

    private static (GraphBuilder G, Value Ids, Value Mask) Inputs(int batch, int length)
    {
        var g = new GraphBuilder();
        return (g, g.Input("ids", DType.I32, batch, length), g.Input("mask", DType.I32, batch, length));
    }

    /// <summary>Copies the fixture's weights to a new file, renaming each (null drops it).</summary>
    private string RewriteWeights(string fileName, Func<string, string?> rename)
    {
        using var source = SafetensorsFile.Open(WeightsPath);
        var writer = new SafetensorsWriter();
        foreach (var entry in source.Entries)
        {
            if (entry.Name.StartsWith("input.", StringComparison.Ordinal) || entry.Name.StartsWith("expected.", StringComparison.Ordinal)
                || entry.Name.StartsWith("buckets.", StringComparison.Ordinal)) continue;
            if (rename(entry.Name) is { } name) writer.Add(name, entry.DType, entry.Shape, source.Bytes(entry.Name));
        }
        string path = Path.Combine(_dir, fileName);
        writer.Write(path);
        return path;
    }
}
