using System.Text;
using System.Text.Json;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Models;

/// <summary>
/// The UNet against tools/reference/unet.py: a tiny Tango-like music UNet (linear projections, key padding mask,
/// MF alphas) and a tiny SD-1.5-like image UNet (1x1-conv projections), both with three levels so that up blocks 1
/// and 2 carry cross-attention like the real ones. The reference runs in float64 on F16-exact weights.
/// </summary>
public sealed class UNetTests(ITestOutputHelper output)
{
    // ~25 layers of f32 GEMMs, convolutions and norms against a float64 reference, outputs of magnitude ~2:
    // observed differences are at most 4.4e-6; 2e-5 absolute + 1e-4 relative leaves room for other summation orders
    // (other backends, other GEMM blockings) and still catches a wrong weight, head count, mask or pooling bin (a
    // dropped mask moves outputs by 0.67, the synapse by 0.26). Norm epsilons (1e-5 vs 1e-6) are below what
    // unit-variance activations resolve: they are pinned by UNetConfig's constants, not by these fixtures.
    private const float Atol = 2e-5f, Rtol = 1e-4f;

    private static string MusicPath => Path.Combine(Fixture.Directory, "unet_music.safetensors");
    private static string ImagePath => Path.Combine(Fixture.Directory, "unet_image.safetensors");
    private static readonly (int Block, int Attention)[] UpAttentions = [(1, 0), (1, 1), (2, 0), (2, 1)];

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void TextOnlyMusicUNetMatchesPyTorch(string backendName)
    {
        using var fixture = Fixture.Open("unet_music");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, MusicPath);
        var model = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(fixture.Meta("config")));
        var outputs = Run(backend, (g, inputs) => new()
        {
            ["out"] = model.Build(g, weights, inputs["sample"], inputs["timestep"], inputs["context"], inputs["mask"], prefix: "unet."),
        }, MusicFeeds(fixture));
        Compare(fixture.F32("text_only.out"), outputs["out"], "text-only music UNet");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ImageUNetOutputAndTapsMatchPyTorch(string backendName)
    {
        using var fixture = Fixture.Open("unet_image");
        using var music = Fixture.Open("unet_music");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, ImagePath);
        var model = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(fixture.Meta("config")));
        var outputs = Run(backend, (g, inputs) =>
        {
            var result = model.BuildWithTaps(g, weights, inputs["image_sample"], inputs["timestep"], inputs["context"]);
            Assert.Equal(UpAttentions.Order(), result.Taps.Keys.Order());
            var named = UpAttentions.ToDictionary(k => $"tap_{k.Block}_{k.Attention}", k => result.Taps[k]);
            named["out"] = result.Prediction;
            return named;
        }, [.. MusicFeeds(music).Where(f => f.Name is "timestep" or "context"), Feed(fixture, "input.sample", "image_sample")]);
        Compare(fixture.F32("expected.out"), outputs["out"], "image UNet");
        foreach (var (block, attention) in UpAttentions)
            Compare(fixture.F32($"expected.tap_{block}_{attention}"), outputs[$"tap_{block}_{attention}"], $"image UNet tap ({block}, {attention})");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void InjectedFeaturesOfEveryPoolingShapeMatchPyTorch(string backendName)
    {
        using var fixture = Fixture.Open("unet_music");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, MusicPath);
        var model = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(fixture.Meta("config")));
        var featureFeeds = UpAttentions.Select(k => Feed(fixture, $"injected.feature_{k.Block}_{k.Attention}", $"feature_{k.Block}_{k.Attention}")).ToArray();
        var outputs = Run(backend, (g, inputs) => new()
        {
            ["out"] = model.Build(g, weights, inputs["sample"], inputs["timestep"], inputs["context"], inputs["mask"],
                new UNetSynapse(UpAttentions.ToDictionary(k => k, k => inputs[$"feature_{k.Block}_{k.Attention}"])), "unet."),
        }, [.. MusicFeeds(fixture), .. featureFeeds]);
        var expected = fixture.F32("injected.out");
        Compare(expected, outputs["out"], "music UNet with injected features");
        // The synapse must matter at this scale, or the comparison above would not test it.
        Assert.True(Check.MaxAbsDiff(expected, fixture.F32("text_only.out")) > 0.05f);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ImageTapsDriveTheMusicUNetEndToEnd(string backendName)
    {
        using var fixture = Fixture.Open("unet_music");
        using var image = Fixture.Open("unet_image");
        using var backend = TestBackends.Create(backendName);
        using var musicWeights = new WeightSet(backend, MusicPath);
        using var imageWeights = new WeightSet(backend, ImagePath);
        var musicModel = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(fixture.Meta("config")));
        var imageModel = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(image.Meta("config")));
        var outputs = Run(backend, (g, inputs) =>
        {
            var taps = imageModel.BuildWithTaps(g, imageWeights, inputs["image_sample"], inputs["timestep"], inputs["context"]).Taps;
            return new()
            {
                ["out"] = musicModel.Build(g, musicWeights, inputs["sample"], inputs["timestep"], inputs["context"], inputs["mask"],
                    new UNetSynapse(taps), "unet."),
            };
        }, [.. MusicFeeds(fixture), Feed(image, "input.sample", "image_sample")]);
        Compare(fixture.F32("end_to_end.out"), outputs["out"], "music UNet driven by image taps");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ZeroOrMissingAlphaLeavesTheTextOnlyUNetUntouched(string backendName)
    {
        using var fixture = Fixture.Open("unet_music");
        using var backend = TestBackends.Create(backendName);
        string dir = Directory.CreateTempSubdirectory("melfusion-unet-").FullName;
        try
        {
            // Zero alphas under the same names, listed first so that they shadow the fixture's nonzero ones.
            string zeroAlphas = Path.Combine(dir, "zero_alphas.safetensors");
            var writer = new SafetensorsWriter();
            foreach (var (block, attention) in UpAttentions)
                writer.Add("unet." + UNetSynapse.AlphaName(block, attention), [1, 1], [0f]);
            writer.Write(zeroAlphas);
            using var zeroWeights = new WeightSet(backend, zeroAlphas, MusicPath);
            Assert.Equal(0f, UNetSynapse.MixWeight(0f));
            var config = UNetConfig.FromDiffusersJson(fixture.Meta("config"));
            var model = new UNet2DConditionModel(config);
            var featureFeeds = UpAttentions.Select(k => Feed(fixture, $"injected.feature_{k.Block}_{k.Attention}", $"feature_{k.Block}_{k.Attention}")).ToArray();
            int textOnlyNodes = 0, zeroAlphaNodes = 0;
            var outputs = Run(backend, (g, inputs) =>
            {
                var textOnly = model.Build(g, zeroWeights, inputs["sample"], inputs["timestep"], inputs["context"], inputs["mask"], prefix: "unet.");
                textOnlyNodes = g.Nodes.Count;
                var features = UpAttentions.ToDictionary(k => k, k => inputs[$"feature_{k.Block}_{k.Attention}"]);
                var zeroAlpha = model.Build(g, zeroWeights, inputs["sample"], inputs["timestep"], inputs["context"], inputs["mask"],
                    new UNetSynapse(features), "unet.");
                zeroAlphaNodes = g.Nodes.Count - textOnlyNodes;
                return new() { ["text_only"] = textOnly, ["zero_alpha"] = zeroAlpha };
            }, [.. MusicFeeds(fixture), .. featureFeeds]);
            Assert.Equal(textOnlyNodes, zeroAlphaNodes);
            Assert.Equal(outputs["text_only"], outputs["zero_alpha"]);
            Compare(fixture.F32("text_only.out"), outputs["zero_alpha"], "music UNet with zero alphas");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }

        // The image checkpoint has no alphas at all (like Tango's own weights): a synapse there changes nothing either.
        using var image = Fixture.Open("unet_image");
        using var imageWeights = new WeightSet(backend, ImagePath);
        var imageModel = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(image.Meta("config")));
        var imageOutputs = Run(backend, (g, inputs) =>
        {
            var plain = imageModel.Build(g, imageWeights, inputs["image_sample"], inputs["timestep"], inputs["context"]);
            var features = UpAttentions.ToDictionary(k => k, _ => inputs["context"]);
            var withSynapse = imageModel.Build(g, imageWeights, inputs["image_sample"], inputs["timestep"], inputs["context"],
                synapse: new UNetSynapse(features));
            return new() { ["plain"] = plain, ["synapse"] = withSynapse };
        }, [.. MusicFeeds(fixture).Where(f => f.Name is "timestep" or "context"), Feed(image, "input.sample", "image_sample")]);
        Assert.Equal(imageOutputs["plain"], imageOutputs["synapse"]);
    }

    [Fact]
    public void ACheckpointOfAnotherConfigFailsNamingTheTensor()
    {
        using var fixture = Fixture.Open("unet_music");
        using var backend = TestBackends.Create("cpu");
        using var weights = new WeightSet(backend, MusicPath);
        var config = UNetConfig.FromDiffusersJson(fixture.Meta("config"));
        string Failure(UNetConfig wrong, string prefix = "unet.")
        {
            var g = new GraphBuilder();
            var sample = g.Input("sample", DType.F32, 2, wrong.InChannels, 8, 4);
            var t = g.Input("t", DType.F32, 2);
            var context = g.Input("context", DType.F32, 2, 5, wrong.CrossAttentionDim);
            return Assert.Throws<CheckpointException>(() => new UNet2DConditionModel(wrong).Build(g, weights, sample, t, context, prefix: prefix)).Message;
        }
        var crossDim = Failure(config with { CrossAttentionDim = 16 });
        Assert.Contains("'unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight'", crossDim);
        Assert.Contains("has shape [12, 12], the model expects [12, 16]", crossDim);
        Assert.Contains("'unet.down_blocks.0.attentions.0.proj_in.weight'", Failure(config with { UseLinearProjection = false }));
        Assert.Contains("'unet.conv_in.weight'", Failure(config with { InChannels = 8 }));
        Assert.Contains("no tensor 'time_embedding.linear_1.weight'", Failure(config, prefix: ""));
    }

    [Fact]
    public void BadInputsAndSynapseKeysAreRejectedWithTheShapes()
    {
        var config = UNetConfig.FromDiffusersJson(OpenMeta("unet_music"));
        var model = new UNet2DConditionModel(config);
        var g = new GraphBuilder();
        var sample = g.Input("sample", DType.F32, 2, 4, 8, 4);
        var t = g.Input("t", DType.F32, 2);
        var context = g.Input("context", DType.F32, 2, 5, 12);
        string Message(Action build) => Assert.Throws<ArgumentException>(build).Message;

        Assert.Contains("[B, 4, H, W]", Message(() => model.Build(g, null!, g.Input("s3", DType.F32, 2, 3, 8, 4), t, context)));
        Assert.Contains("multiples of 4", Message(() => model.Build(g, null!, g.Input("s6", DType.F32, 2, 4, 6, 4), t, context)));
        Assert.Contains("[2, L, 12]", Message(() => model.Build(g, null!, sample, t, g.Input("c16", DType.F32, 2, 5, 16))));
        Assert.Contains("I32 [2, 5]", Message(() => model.Build(g, null!, sample, t, context, g.Input("m", DType.I32, 2, 4))));
        var feature = g.Input("feature", DType.F32, 2, 7, 9);
        Assert.Contains("feature (0, 0) names no up-block cross-attention",
            Message(() => model.Build(g, null!, sample, t, context, synapse: new UNetSynapse(new Dictionary<(int, int), Value> { [(0, 0)] = feature }))));
        Assert.Contains("feature (1, 2) names no up-block cross-attention",
            Message(() => model.Build(g, null!, sample, t, context, synapse: new UNetSynapse(new Dictionary<(int, int), Value> { [(1, 2)] = feature }))));
        var wrongBatch = g.Input("wrong_batch", DType.F32, 1, 7, 9);
        Assert.Contains("feature (2, 1) is F32[1, 7, 9]",
            Message(() => model.Build(g, null!, sample, t, context, synapse: new UNetSynapse(new Dictionary<(int, int), Value> { [(2, 1)] = wrongBatch }))));
        Assert.Contains("not divisible into 5 attention heads",
            Assert.Throws<ArgumentException>(() => new UNet2DConditionModel(config with { AttentionHeads = [3, 5, 4] })).Message);
    }

    [Fact]
    public void TheSynapseFeedsOnlyTheReceiversCrossAttentions()
    {
        var config = UNetConfig.FromDiffusersJson(OpenMeta("unet_music"));
        var g = new GraphBuilder();
        var feature = g.Input("feature", DType.F32, 2, 7, 9);
        var taps = new UNetTaps(new Dictionary<(int, int), Value> { [(0, 0)] = feature, [(1, 1)] = feature, [(2, 0)] = feature });
        Assert.Equal([(1, 1), (2, 0)], UNetSynapse.FromTaps(taps, config).Features.Keys.Order());
        // A receiver built without attention in up block 1 (as the default music UNet at its widest level) takes only (2, 0).
        var lean = config with { UpBlockTypes = [UpBlockType.UpBlock2D, UpBlockType.UpBlock2D, UpBlockType.CrossAttnUpBlock2D] };
        var synapse = UNetSynapse.FromTaps(taps, lean, trainableAlphas: true);
        Assert.Equal([(2, 0)], synapse.Features.Keys);
        Assert.True(synapse.TrainableAlphas);
    }

    [Fact]
    public void MixWeightIsBoundedAndOddInAlpha()
    {
        Assert.Equal(0f, UNetSynapse.MixWeight(0f));
        Assert.InRange(UNetSynapse.MixWeight(1.5f) + UNetSynapse.MixWeight(-1.5f), -1e-7f, 1e-7f);
        Assert.InRange(UNetSynapse.MixWeight(2.5f) - (2 / (1 + Math.Exp(-2.5)) - 1) / 5, -1e-7, 1e-7);
        Assert.Equal(0.2f, UNetSynapse.MixWeight(80f));
    }

    [Fact]
    public void DiffusersConfigsParseToThePresets()
    {
        // configs/diffusion_model_config.json of Tango and MeLFusion (spec §2.2).
        const string tango = """
            {"_class_name":"UNet2DConditionModel","act_fn":"silu","attention_head_dim":[5,10,20,20],
             "block_out_channels":[320,640,1280,1280],"center_input_sample":false,"cross_attention_dim":1024,
             "down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
             "downsample_padding":1,"dual_cross_attention":false,"flip_sin_to_cos":true,"freq_shift":0,
             "in_channels":8,"out_channels":8,"layers_per_block":2,"mid_block_scale_factor":1,"norm_eps":1e-05,
             "norm_num_groups":32,"num_class_embeds":null,"only_cross_attention":false,"sample_size":[32,2],
             "up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],
             "use_linear_projection":true,"upcast_attention":true}
            """;
        // Stable Diffusion v1.5 (spec §3.2): one int attention_head_dim = 8 heads in every block.
        const string sd15 = """
            {"act_fn":"silu","attention_head_dim":8,"block_out_channels":[320,640,1280,1280],"cross_attention_dim":768,
             "down_block_types":["CrossAttnDownBlock2D","CrossAttnDownBlock2D","CrossAttnDownBlock2D","DownBlock2D"],
             "up_block_types":["UpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D","CrossAttnUpBlock2D"],
             "downsample_padding":1,"flip_sin_to_cos":true,"freq_shift":0,"in_channels":4,"out_channels":4,
             "layers_per_block":2,"mid_block_scale_factor":1,"norm_eps":1e-05,"norm_num_groups":32,"sample_size":64,
             "use_linear_projection":false,"upcast_attention":false}
            """;
        AssertSame(UNetConfig.TangoMusic, UNetConfig.FromDiffusersJson(tango));
        AssertSame(UNetConfig.StableDiffusion15, UNetConfig.FromDiffusersJson(sd15));
        AssertSame(UNetConfig.StableDiffusion21, UNetConfig.FromDiffusersJson(tango.Replace("\"in_channels\":8,\"out_channels\":8", "\"in_channels\":4,\"out_channels\":4")));
        Assert.Equal([40, 80, 160, 160], UNetConfig.StableDiffusion15.BlockOutChannels.Zip(UNetConfig.StableDiffusion15.AttentionHeads, (c, h) => c / h));
        Assert.All(UNetConfig.TangoMusic.BlockOutChannels.Zip(UNetConfig.TangoMusic.AttentionHeads, (c, h) => c / h), d => Assert.Equal(64, d));
        Assert.Contains("'only_cross_attention' = true", Assert.Throws<ArgumentException>(() =>
            UNetConfig.FromDiffusersJson(tango.Replace("\"only_cross_attention\":false", "\"only_cross_attention\":true"))).Message);
        Assert.Contains("'num_class_embeds' = 10", Assert.Throws<ArgumentException>(() =>
            UNetConfig.FromDiffusersJson(tango.Replace("\"num_class_embeds\":null", "\"num_class_embeds\":10"))).Message);
        Assert.Contains("'up_block_types' entry 'AttnUpBlock2D'", Assert.Throws<ArgumentException>(() =>
            UNetConfig.FromDiffusersJson(tango.Replace("\"UpBlock2D\",", "\"AttnUpBlock2D\","))).Message);
    }

    /// <summary>
    /// The full Tango UNet on a [1, 8, 256, 16] latent with a synapse of MeLFusion's real shapes (spec §1.3), built
    /// against a checkpoint with every tensor name and shape of the PyTorch reference (a sparse file of zeros plus
    /// nonzero alphas, so nothing is read but the header and alphas), then memory-planned without running.
    /// </summary>
    [Fact]
    public void FullSizeTangoUNetBuildsFromReferenceNamesAndPlansMemory()
    {
        var shapes = JsonSerializer.Deserialize<Dictionary<string, int[]>>(File.ReadAllText(Path.Combine(Fixture.Directory, "unet_tango_weights.json")))!;
        string dir = Directory.CreateTempSubdirectory("melfusion-tango-").FullName;
        try
        {
            string path = Path.Combine(dir, "tango_unet.safetensors");
            var alphas = UpAttentionsOf(UNetConfig.TangoMusic).ToDictionary(k => "unet." + UNetSynapse.AlphaName(k.Block, k.Attention), _ => 1.5f);
            WriteSparseCheckpoint(path, alphas, shapes);
            using var backend = TestBackends.Create("cpu");
            using var weights = new WeightSet(backend, path);
            var model = new UNet2DConditionModel(UNetConfig.TangoMusic);
            foreach (int batch in new[] { 1, 2 })
            {
                var g = new GraphBuilder();
                var sample = g.Input("sample", DType.F32, batch, 8, 256, 16);
                var t = g.Input("t", DType.F32, batch);
                var context = g.Input("context", DType.F32, batch, 32, 1024);
                var mask = g.Input("mask", DType.I32, batch, 32);
                // Image-UNet attn2 outputs of SD-2.1 on a 64x64 latent: 16², 32², 64² tokens of 1280, 640, 320 channels.
                var features = UpAttentionsOf(UNetConfig.TangoMusic).ToDictionary(k => k, k =>
                    g.Input($"feature_{k.Block}_{k.Attention}", DType.F32, batch, 256 << (2 * (k.Block - 1)), 1280 >> (k.Block - 1)));
                var result = model.BuildWithTaps(g, weights, sample, t, context, mask, new UNetSynapse(features), "unet.");
                g.Output("prediction", result.Prediction);
                Assert.Equal([batch, 8, 256, 16], result.Prediction.Shape.Dims.ToArray());
                Assert.Equal([batch, 4096, 320], result.Taps[(3, 2)].Shape.Dims.ToArray());

                var used = g.Values.Where(v => v.Kind == ValueKind.Constant).Select(v => v.Name!).ToHashSet();
                // Every reference tensor is a graph constant, and nothing else is; the alphas are read at build time.
                Assert.Empty(shapes.Keys.Except(used));
                Assert.Empty(used.Except(shapes.Keys));
                var plan = MemoryPlanner.Plan(g, backend); // the CPU kernels' workspaces included
                var widest = g.Nodes.MaxBy(n => plan.WorkspaceBytes[n.Index])!;
                output.WriteLine($"Tango UNet, batch {batch}: {g.Nodes.Count} nodes, {plan}; largest workspace "
                    + $"{plan.WorkspaceBytes[widest.Index] / 1048576.0:F1} MiB ({widest.Op.Name} of {widest.Inputs[0].Shape} by {widest.Inputs[1].Shape})");
                Assert.True(plan.ArenaBytes >= plan.PeakLiveBytes && plan.ArenaBytes <= plan.PeakLiveBytes * 11 / 10 && plan.ArenaBytes < plan.UnsharedBytes / 10, plan.ToString());
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private void Compare(float[] expected, float[] actual, string what)
    {
        output.WriteLine($"{what}: max |diff| {Check.MaxAbsDiff(expected, actual):E2}");
        Check.Close(expected, actual, Atol, Rtol, what);
    }

    private static IEnumerable<(int Block, int Attention)> UpAttentionsOf(UNetConfig config) =>
        Enumerable.Range(0, config.Levels).Where(i => config.UpBlockTypes[i] == UpBlockType.CrossAttnUpBlock2D)
            .SelectMany(i => Enumerable.Range(0, config.UpLayersPerBlock).Select(j => (i, j)));

    /// <summary>A safetensors file with <paramref name="scalars"/> [1, 1] written out and every tensor of <paramref name="shapes"/> a hole of zeros.</summary>
    private static void WriteSparseCheckpoint(string path, Dictionary<string, float> scalars, Dictionary<string, int[]> shapes)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var name in scalars.Keys)
        {
            header[name] = new Dictionary<string, object> { ["dtype"] = "F32", ["shape"] = new[] { 1, 1 }, ["data_offsets"] = new[] { offset, offset + 4 } };
            offset += 4;
        }
        foreach (var (name, dims) in shapes)
        {
            long bytes = dims.Aggregate(4L, (n, d) => n * d);
            header[name] = new Dictionary<string, object> { ["dtype"] = "F32", ["shape"] = dims, ["data_offsets"] = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = JsonSerializer.Serialize(header);
        json += new string(' ', (8 - Encoding.UTF8.GetByteCount(json) % 8) % 8);
        var headerBytes = Encoding.UTF8.GetBytes(json);
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)headerBytes.Length));
        file.Write(headerBytes);
        foreach (float value in scalars.Values) file.Write(BitConverter.GetBytes(value));
        file.SetLength(8 + headerBytes.Length + offset);
    }

    private static void AssertSame(UNetConfig expected, UNetConfig actual)
    {
        Assert.Equal(expected.InChannels, actual.InChannels);
        Assert.Equal(expected.OutChannels, actual.OutChannels);
        Assert.Equal(expected.BlockOutChannels, actual.BlockOutChannels);
        Assert.Equal(expected.LayersPerBlock, actual.LayersPerBlock);
        Assert.Equal(expected.DownBlockTypes, actual.DownBlockTypes);
        Assert.Equal(expected.UpBlockTypes, actual.UpBlockTypes);
        Assert.Equal(expected.AttentionHeads, actual.AttentionHeads);
        Assert.Equal(expected.CrossAttentionDim, actual.CrossAttentionDim);
        Assert.Equal(expected.UseLinearProjection, actual.UseLinearProjection);
        Assert.Equal(expected.NormGroups, actual.NormGroups);
        Assert.Equal(expected.NormEps, actual.NormEps);
        Assert.Equal(expected.FlipSinToCos, actual.FlipSinToCos);
        Assert.Equal(expected.FreqShift, actual.FreqShift);
        Assert.Equal(expected.UpcastAttention, actual.UpcastAttention);
    }

    private static string OpenMeta(string name)
    {
        using var fixture = Fixture.Open(name);
        return fixture.Meta("config");
    }

    private static OpRunner.Feed Feed(Fixture fixture, string tensor, string input) =>
        new(input, fixture.Shape(tensor), fixture.F32(tensor));

    private static OpRunner.Feed[] MusicFeeds(Fixture music) =>
    [
        Feed(music, "input.sample", "sample"),
        Feed(music, "input.timestep", "timestep"),
        Feed(music, "input.context", "context"),
        new("mask", music.Shape("input.mask"), music.I32("input.mask").Select(v => (float)v).ToArray(), DType.I32),
    ];

    /// <summary>Builds a graph with named inputs and outputs, runs it once and reads every output as f32.</summary>
    private static Dictionary<string, float[]> Run(IBackend backend, Func<GraphBuilder, Dictionary<string, Value>, Dictionary<string, Value>> build,
        params OpRunner.Feed[] feeds)
    {
        var g = new GraphBuilder();
        var inputs = feeds.ToDictionary(f => f.Name, f => g.Input(f.Name, f.DType, f.Shape));
        foreach (var (name, value) in build(g, inputs)) g.Output(name, value);
        using var plan = g.Compile(backend);
        foreach (var f in feeds)
        {
            if (f.DType == DType.I32) plan.SetInput<int>(f.Name, f.Data.Select(x => (int)x).ToArray());
            else plan.SetInput<float>(f.Name, f.Data);
        }
        plan.Run();
        return g.Outputs.Keys.ToDictionary(name => name, name => plan.ReadOutput<float>(name));
    }
}
