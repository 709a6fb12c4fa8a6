using MeLFusion.Native.IO.Pickle;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Conversion;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Models;

/// <summary>
/// Converts the tiny fake checkpoints of tools/reference/convert.py (real naming of every source) and compares the
/// parts with the expected tensors, exactly for renames and within f32 rounding for folded weight norm.
/// </summary>
public sealed class ConversionTests : IDisposable
{
    private static readonly string Sources = Path.Combine(Fixture.Directory, "conversion");

    /// <summary>The configurations of convert.py's tiny models.</summary>
    private static readonly ConversionTargets Tiny = new(
        new T5Config(200, 8, 4, 3, 2, 10, RelativeBuckets: 8),
        new AutoencoderKlConfig(1, 1, 4, [1, 2], 1, 2, 0.9227914214134216f, Groups: 2),
        new AutoencoderKlConfig(3, 3, 4, [1, 2, 2], 1, 2, 0.18215f, Groups: 2),
        new HifiGanConfig(4, [2, 2], [4, 4], 16, [3, 5], [[1, 3], [1, 2]]),
        TinyUnet(8),
        TinyUnet(4));

    /// <summary>convert.py's UNET: channels [4, 8], one layer per block, 2 heads, context 6, two levels like SD's ends.</summary>
    private static UNetConfig TinyUnet(int channels) => new(channels, channels, [4, 8], 1,
        [DownBlockType.CrossAttnDownBlock2D, DownBlockType.DownBlock2D], [UpBlockType.UpBlock2D, UpBlockType.CrossAttnUpBlock2D],
        [2, 2], 6, UseLinearProjection: true, NormGroups: 2);

    private static readonly ConversionOptions TinyOptions = new() { Targets = Tiny };

    private readonly string _tmp = Directory.CreateTempSubdirectory("melfusion-convert-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private static string Source(string file) => Path.Combine(Sources, file);

    private string Output(WeightPart part) => Path.Combine(_tmp, part.FileName());

    private ConversionReport Convert(ConversionSources sources, ConversionOptions? options = null) =>
        CheckpointConverter.Convert(sources, _tmp, options ?? TinyOptions);

    /// <summary>Asserts the part holds exactly the expected tensors (names, shapes, bit-identical values).</summary>
    private void AssertPartEquals(WeightPart part, string expectedFixture, Func<string, bool>? include = null)
    {
        using var expected = SafetensorsFile.Open(Path.Combine(Sources, expectedFixture + ".safetensors"));
        using var actual = SafetensorsFile.Open(Output(part));
        var names = expected.Entries.Select(e => e.Name).Where(include ?? (_ => true)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(names, actual.Entries.Select(e => e.Name).Order(StringComparer.Ordinal).ToArray());
        foreach (string name in names)
        {
            Assert.Equal(expected[name].Shape, actual[name].Shape);
            Assert.Equal(DType.F32, actual[name].DType);
            Assert.True(expected.ReadF32(name).AsSpan().SequenceEqual(actual.ReadF32(name)), $"{part.FileName()}: '{name}' differs");
        }
    }

    private static PartReport Part(ConversionReport report, WeightPart part) => Assert.Single(report.Parts, p => p.Part == part);

    [Fact]
    public void TangoMainGivesTheMusicUnetAndTheTextEncoderWithoutItsTiedAlias()
    {
        var report = Convert(new ConversionSources { TangoMain = Source("tango_main.bin") });

        AssertPartEquals(WeightPart.MusicUnet, "expected_music_unet", name => !name.EndsWith(".alpha", StringComparison.Ordinal));
        AssertPartEquals(WeightPart.TextEncoder, "expected_text_encoder");
        Assert.Equal("T5 encoder", Part(report, WeightPart.TextEncoder).Check.Model);
        Assert.Empty(Part(report, WeightPart.TextEncoder).Check.Extra);
        Assert.Equal("music UNet", Part(report, WeightPart.MusicUnet).Check.Model);
        Assert.Empty(Part(report, WeightPart.MusicUnet).Check.Extra);
        var dropped = Assert.Single(Assert.Single(report.Sources).Dropped);
        Assert.Equal("text_encoder.encoder.embed_tokens.weight", dropped.Name);
        Assert.Empty(report.Sources[0].Unrecognised);
        Assert.Equal(["music_unet.safetensors", "text_encoder.safetensors"], Directory.GetFiles(_tmp).Select(f => Path.GetFileName(f)).Order().ToArray());
    }

    [Fact]
    public void MeLFusionCheckpointKeepsOnlyTheUpBlockCrossAttentionAlphas()
    {
        var report = Convert(new ConversionSources { TangoMain = Source("melfusion_main.bin") });

        AssertPartEquals(WeightPart.MusicUnet, "expected_music_unet");
        Assert.Empty(Part(report, WeightPart.MusicUnet).Check.Extra); // the kept alphas are read by the synapse
        using var unet = SafetensorsFile.Open(Output(WeightPart.MusicUnet));
        Assert.Equal(["up_blocks.1.attentions.0.transformer_blocks.0.attn2.alpha", "up_blocks.1.attentions.1.transformer_blocks.0.attn2.alpha"],
            unet.Entries.Select(e => e.Name).Where(n => n.EndsWith(".alpha", StringComparison.Ordinal)).Order().ToArray());
        Assert.Equal([1, 1], unet["up_blocks.1.attentions.0.transformer_blocks.0.attn2.alpha"].Shape);
        // attn1 of the 4 transformers, attn2 of the down and mid ones; plus the tied T5 alias.
        var alphas = report.Sources[0].Dropped.Where(d => d.Name.EndsWith(".alpha", StringComparison.Ordinal)).Select(d => d.Name).ToArray();
        Assert.Equal(6, alphas.Length);
        Assert.Contains("unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.alpha", alphas);
        Assert.Contains("unet.mid_block.attentions.0.transformer_blocks.0.attn2.alpha", alphas);
    }

    [Fact]
    public void TangoVaeGivesTheLdmMusicVaeAndThePlainVocoder()
    {
        var report = Convert(new ConversionSources { TangoVae = Source("tango_vae.bin") });

        AssertPartEquals(WeightPart.MusicVae, "expected_music_vae");
        AssertPartEquals(WeightPart.Vocoder, "expected_vocoder");
        Assert.Equal("music AutoencoderKL", Part(report, WeightPart.MusicVae).Check.Model);
        Assert.Equal("HiFi-GAN", Part(report, WeightPart.Vocoder).Check.Model);
        Assert.Empty(report.Sources[0].Dropped);
    }

    [Theory]
    [InlineData("sd_vae.safetensors")]
    [InlineData("sd_vae_legacy.safetensors")]
    public void DiffusersVaeIsRenamedToLdmWithReversedUpBlocksAndConvAttention(string file)
    {
        var report = Convert(new ConversionSources { StableDiffusionVae = Source(file) });

        AssertPartEquals(WeightPart.ImageVae, "expected_image_vae");
        Assert.Equal("image AutoencoderKL", Part(report, WeightPart.ImageVae).Check.Model);
    }

    [Theory]
    [InlineData("down_blocks.1.resnets.0.conv_shortcut.weight", null)]
    [InlineData("encoder.down_blocks.1.resnets.0.conv_shortcut.weight", "encoder.down.1.block.0.nin_shortcut.weight")]
    [InlineData("encoder.down_blocks.0.downsamplers.0.conv.bias", "encoder.down.0.downsample.conv.bias")]
    [InlineData("decoder.up_blocks.0.resnets.2.norm1.weight", "decoder.up.3.block.2.norm1.weight")]
    [InlineData("decoder.up_blocks.3.resnets.0.conv_shortcut.bias", "decoder.up.0.block.0.nin_shortcut.bias")]
    [InlineData("decoder.up_blocks.1.upsamplers.0.conv.weight", "decoder.up.2.upsample.conv.weight")]
    [InlineData("decoder.mid_block.resnets.1.conv2.weight", "decoder.mid.block_2.conv2.weight")]
    [InlineData("encoder.mid_block.attentions.0.to_out.0.bias", "encoder.mid.attn_1.proj_out.bias")]
    [InlineData("encoder.mid_block.attentions.0.proj_attn.weight", "encoder.mid.attn_1.proj_out.weight")]
    [InlineData("decoder.mid_block.attentions.0.group_norm.weight", "decoder.mid.attn_1.norm.weight")]
    [InlineData("decoder.conv_norm_out.bias", "decoder.norm_out.bias")]
    [InlineData("quant_conv.weight", "quant_conv.weight")]
    [InlineData("encoder.up_blocks.0.resnets.0.conv1.weight", null)]
    [InlineData("decoder.mid_block.attentions.0.to_out.1.weight", null)]
    [InlineData("encoder.down_blocks.0.resnets.0.time_emb_proj.weight", null)]
    public void DiffusersVaeNamesMapToLdmNames(string diffusers, string? ldm) =>
        Assert.Equal(ldm, VaeConversion.LdmName(diffusers, upBlocks: 4));

    [Fact]
    public void FlanT5KeepsTheEncoderAndDropsTheDecoder()
    {
        var report = Convert(new ConversionSources { FlanT5 = Source("flan_t5.safetensors") });

        AssertPartEquals(WeightPart.TextEncoder, "expected_text_encoder");
        Assert.Equal(["decoder.block.0.layer.0.SelfAttention.q.weight", "decoder.block.0.layer.1.EncDecAttention.k.weight",
            "decoder.final_layer_norm.weight", "lm_head.weight"], report.Sources[0].Dropped.Select(d => d.Name).Order().ToArray());
    }

    [Fact]
    public void FlanT5ReplacesTheTextEncoderOfTheMainCheckpoint()
    {
        var report = Convert(new ConversionSources { TangoMain = Source("tango_main.bin"), FlanT5 = Source("flan_t5.safetensors") });

        var textEncoder = Part(report, WeightPart.TextEncoder);
        Assert.EndsWith("flan_t5.safetensors", textEncoder.Source);
        Assert.All(report.Sources[0].Dropped, d => Assert.StartsWith("text_encoder.", d.Name));
        AssertPartEquals(WeightPart.TextEncoder, "expected_text_encoder");
    }

    [Theory]
    [InlineData("sd_unet.safetensors")]
    [InlineData("sd_ckpt.pth")]
    public void StableDiffusionUnetKeepsItsNamesAndDropsEveryAlpha(string file)
    {
        var report = Convert(new ConversionSources { StableDiffusionUnet = Source(file) });

        AssertPartEquals(WeightPart.ImageUnet, "sd_unet");
        Assert.All(report.Sources[0].Dropped, d => Assert.EndsWith(".alpha", d.Name));
        Assert.Equal(file == "sd_ckpt.pth" ? 8 : 0, report.Sources[0].Dropped.Count);
        Assert.Equal("image UNet", Part(report, WeightPart.ImageUnet).Check.Model);
        Assert.Empty(Part(report, WeightPart.ImageUnet).Check.Extra);
    }

    [Theory]
    [InlineData("jik876_generator.pt")]
    [InlineData("parametrized_generator.pt")]
    public void WeightNormIsFoldedAsTorchRemovesIt(string file)
    {
        var report = Convert(new ConversionSources { Vocoder = Source(file) });

        Assert.Equal("HiFi-GAN", Part(report, WeightPart.Vocoder).Check.Model);
        using var expected = SafetensorsFile.Open(Path.Combine(Sources, "expected_vocoder.safetensors"));
        using var actual = SafetensorsFile.Open(Output(WeightPart.Vocoder));
        Assert.Equal(expected.Entries.Select(e => e.Name).Order().ToArray(), actual.Entries.Select(e => e.Name).Order().ToArray());
        foreach (var entry in expected.Entries)
        {
            Assert.Equal(entry.Shape, actual[entry.Name].Shape);
            // torch: v * (g / ||v||) with an f32 norm; here the norm is summed in f64: a few f32 ulps apart.
            Check.Close(expected.ReadF32(entry.Name), actual.ReadF32(entry.Name), 1e-7f, 1e-6f, entry.Name);
        }
    }

    [Fact]
    public void FoldedVocoderRunsLikeTheWeightNormedTorchGenerator()
    {
        Convert(new ConversionSources { Vocoder = Source("jik876_generator.pt") });

        using var forward = Fixture.Open("conversion/vocoder_forward");
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, Output(WeightPart.Vocoder));
        var audio = OpRunner.Run(backend, (g, inputs) => new HifiGan(Tiny.Vocoder).Build(g, weights, inputs[0]),
            new OpRunner.Feed("mel", forward.Shape("input.mel"), forward.F32("input.mel")));
        // 14 chained small convolutions in f32 with different summation orders.
        Check.Close(forward.F32("expected.audio"), audio, 1e-5f, 1e-4f, "vocoder audio");
    }

    [Fact]
    public void SpeechT5VocoderRenamesUpsamplersAndDropsNormalisation()
    {
        var report = Convert(new ConversionSources { Vocoder = Source("speecht5_vocoder.safetensors") });

        AssertPartEquals(WeightPart.Vocoder, "expected_vocoder");
        Assert.Equal(["mean", "scale"], report.Sources[0].Dropped.Select(d => d.Name).ToArray());
    }

    [Fact]
    public void WeightNormFoldNormalisesEachRowOverTheOtherDims()
    {
        // Two rows of v = [3, 4] and [0, 2]; g = [10, -1]: W = g v / ||v||.
        var folded = HifiGanConversion.FoldWeightNorm([10f, -1f], [3f, 4f, 0f, 2f], "test");
        Assert.Equal([6f, 8f, 0f, -1f], folded);
        Assert.Contains("do not split into 2 weight-norm rows", Assert.Throws<CheckpointException>(() => HifiGanConversion.FoldWeightNorm([1f, 1f], [1f, 0f, 0f], "test")).Message);
        Assert.Contains("row 0 has norm 0", Assert.Throws<CheckpointException>(() => HifiGanConversion.FoldWeightNorm([1f], [0f, 0f], "test")).Message);
    }

    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void HalfPrecisionOutputRoundsEveryValue(DType dtype)
    {
        Convert(new ConversionSources { TangoVae = Source("tango_vae.bin") }, TinyOptions with { DType = dtype });

        using var expected = SafetensorsFile.Open(Path.Combine(Sources, "expected_vocoder.safetensors"));
        using var actual = SafetensorsFile.Open(Output(WeightPart.Vocoder));
        foreach (var entry in expected.Entries)
        {
            Assert.Equal(dtype, actual[entry.Name].DType);
            var values = expected.ReadF32(entry.Name);
            var rounded = new byte[values.Length * 2];
            FloatConversions.FromSingle(values, dtype, rounded);
            Assert.True(rounded.AsSpan().SequenceEqual(actual.Bytes(entry.Name)), $"'{entry.Name}' is not the {dtype} rounding");
        }
    }

    /// <summary>Writes a copy of a safetensors fixture with tensors removed, replaced or added.</summary>
    private string Variant(string fixture, Func<string, bool> keep, params (string Name, int[] Shape)[] add)
    {
        using var source = SafetensorsFile.Open(Source(fixture));
        var writer = new SafetensorsWriter();
        foreach (var e in source.Entries.Where(e => keep(e.Name))) writer.Add(e.Name, e.Shape, source.ReadF32(e.Name));
        foreach (var (name, shape) in add) writer.Add(name, shape, new float[shape.Aggregate(1, (a, d) => a * d)]);
        string path = Path.Combine(_tmp, "variant_" + fixture);
        writer.Write(path);
        return path;
    }

    [Fact]
    public void UnrecognisedSourceTensorsFailUnlessAllowed()
    {
        string t5 = Variant("flan_t5.safetensors", _ => true, ("optimizer.step", [1]));

        var e = Assert.Throws<CheckpointException>(() => Convert(new ConversionSources { FlanT5 = t5 }));
        Assert.Contains("optimizer.step", e.Message);
        Assert.Contains("--allow-extra", e.Message);
        Assert.False(File.Exists(Output(WeightPart.TextEncoder)));

        var report = Convert(new ConversionSources { FlanT5 = t5 }, TinyOptions with { AllowExtra = true });
        Assert.Equal(["optimizer.step"], report.Sources[0].Unrecognised);
        AssertPartEquals(WeightPart.TextEncoder, "expected_text_encoder");
    }

    [Fact]
    public void TensorsTheModelDoesNotUseFailUnlessAllowed()
    {
        const string extra = "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight";
        string t5 = Variant("flan_t5.safetensors", _ => true, (extra, [8, 3]));

        var e = Assert.Throws<CheckpointException>(() => Convert(new ConversionSources { FlanT5 = t5 }));
        Assert.Contains(extra, e.Message);
        Assert.Contains("not used by the T5 encoder", e.Message);
        Assert.Empty(Directory.GetFiles(_tmp, "*text_encoder*", SearchOption.AllDirectories));

        var report = Convert(new ConversionSources { FlanT5 = t5 }, TinyOptions with { AllowExtra = true });
        Assert.Equal([extra], Part(report, WeightPart.TextEncoder).Check.Extra);
        using var part = SafetensorsFile.Open(Output(WeightPart.TextEncoder));
        Assert.True(part.Contains(extra));
    }

    [Fact]
    public void AMissingTensorIsNamedAndNothingIsLeftBehind()
    {
        const string missing = "encoder.block.1.layer.1.DenseReluDense.wo.weight";
        string t5 = Variant("flan_t5.safetensors", name => name != missing);

        var e = Assert.Throws<CheckpointException>(() => Convert(new ConversionSources { FlanT5 = t5 }));
        Assert.Contains("text_encoder.safetensors does not fit the T5 encoder", e.Message);
        Assert.Contains($"'{missing}'", e.Message);
        Assert.Equal(["variant_flan_t5.safetensors"], Directory.GetFiles(_tmp).Select(f => Path.GetFileName(f)).ToArray());
    }

    [Fact]
    public void AMisshapenTensorIsNamedWithBothShapes()
    {
        var wider = Tiny with { Vocoder = Tiny.Vocoder with { UpsampleInitialChannel = 32 } };

        var e = Assert.Throws<CheckpointException>(() =>
            Convert(new ConversionSources { Vocoder = Source("speecht5_vocoder.safetensors") }, TinyOptions with { Targets = wider }));
        Assert.Contains("vocoder.safetensors does not fit the HiFi-GAN", e.Message);
        Assert.Contains("'conv_pre.weight' has shape [16, 4, 7], the model expects [32, 4, 7]", e.Message);
        Assert.False(File.Exists(Output(WeightPart.Vocoder)));
    }

    [Fact]
    public void AnExistingPartSurvivesAFailedConversion()
    {
        Convert(new ConversionSources { Vocoder = Source("speecht5_vocoder.safetensors") });
        byte[] good = File.ReadAllBytes(Output(WeightPart.Vocoder));
        var wider = Tiny with { Vocoder = Tiny.Vocoder with { UpsampleInitialChannel = 32 } };

        Assert.Throws<CheckpointException>(() =>
            Convert(new ConversionSources { Vocoder = Source("jik876_generator.pt") }, TinyOptions with { Targets = wider }));
        Assert.Equal(good, File.ReadAllBytes(Output(WeightPart.Vocoder)));
    }

    [Fact]
    public void ADifferingTiedEmbeddingIsAmbiguous()
    {
        string t5 = Variant("flan_t5.safetensors", _ => true, ("encoder.embed_tokens.weight", [200, 8]));

        var e = Assert.Throws<CheckpointException>(() => Convert(new ConversionSources { FlanT5 = t5 }));
        Assert.Contains("'encoder.embed_tokens.weight' differs from 'shared.weight'", e.Message);
    }

    [Fact]
    public void AnOnlyTiedAliasBecomesTheSharedEmbedding()
    {
        using var flan = SafetensorsFile.Open(Source("flan_t5.safetensors"));
        var writer = new SafetensorsWriter();
        foreach (var e in flan.Entries)
            writer.Add(e.Name == "shared.weight" ? "encoder.embed_tokens.weight" : e.Name, e.Shape, flan.ReadF32(e.Name));
        string path = Path.Combine(_tmp, "alias_only.safetensors");
        writer.Write(path);

        Convert(new ConversionSources { FlanT5 = path });
        AssertPartEquals(WeightPart.TextEncoder, "expected_text_encoder");
    }

    [Fact]
    public void AHostileCheckpointFailsInTheUnpickler()
    {
        var e = Assert.Throws<PickleException>(() =>
            Convert(new ConversionSources { TangoMain = Path.Combine(Fixture.Directory, "checkpoints", "evil.pt") }));
        Assert.Contains("refuses global 'posix.system'", e.Message);
        Assert.Empty(Directory.GetFiles(_tmp));
    }

    [Fact]
    public void AWrongKindOfCheckpointIsReported()
    {
        var e = Assert.Throws<CheckpointException>(() => Convert(new ConversionSources { StableDiffusionVae = Source("flan_t5.safetensors") }));
        Assert.Contains("no 'post_quant_conv.weight' under any prefix", e.Message);
    }

    [Fact]
    public void TheTokenizerIsCheckedAndCopied()
    {
        string spiece = Path.Combine(Fixture.Directory, "tokenizer", "spiece.model");
        var report = Convert(new ConversionSources { Tokenizer = spiece });
        Assert.Equal(File.ReadAllBytes(spiece), File.ReadAllBytes(Path.Combine(_tmp, "spiece.model")));
        Assert.Empty(report.Parts);

        var small = TinyOptions with { Targets = Tiny with { TextEncoder = Tiny.TextEncoder with { VocabSize = 100 } } };
        Assert.Contains("200 pieces", Assert.Throws<CheckpointException>(() => Convert(new ConversionSources { Tokenizer = spiece }, small)).Message);
    }

    [Fact]
    public void NothingToConvertIsAnError() =>
        Assert.Throws<ArgumentException>(() => Convert(new ConversionSources()));

    [Fact]
    public void ConvertedPartsLoadIntoTheEngineModelsAtTheirConfigurations()
    {
        Convert(new ConversionSources { TangoMain = Source("melfusion_main.bin"), TangoVae = Source("tango_vae.bin"), StableDiffusionVae = Source("sd_vae.safetensors") });
        using var backend = TestBackends.Create("cpu");

        using (var weights = new WeightSet(backend, Output(WeightPart.TextEncoder)))
        using (var t5 = new T5Encoder(Tiny.TextEncoder))
        {
            var hidden = OpRunner.Run(backend, (g, inputs) => t5.Build(g, weights, inputs[0], inputs[1]),
                new OpRunner.Feed("ids", [1, 3], [5, 17, 1], DType.I32), new OpRunner.Feed("mask", [1, 3], [1, 1, 1], DType.I32));
            Assert.Equal(3 * 8, hidden.Length);
            Assert.All(hidden, v => Assert.True(float.IsFinite(v)));
        }
        foreach (var (part, config) in new[] { (WeightPart.MusicVae, Tiny.MusicVae), (WeightPart.ImageVae, Tiny.ImageVae) })
        {
            using var weights = new WeightSet(backend, Output(part));
            var decoded = OpRunner.Run(backend, (g, inputs) => new AutoencoderKl(config).Decode(g, weights, inputs[0]),
                new OpRunner.Feed("latent", [1, 2, 2, 3], new float[12]));
            Assert.Equal(config.OutChannels * 2 * 3 * config.Downsampling * config.Downsampling, decoded.Length);
        }
    }
}
