using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Pipelines;

/// <summary>
/// Writes a randomly initialised MeLFusion weights directory for a configuration: each part's graph is built once
/// against an initialising <see cref="WeightSet"/>, which creates exactly the tensors the engine's models read
/// (names and shapes), so the files always match the code. The starting point of training from scratch.
/// </summary>
public static class ModelInitializer
{
    public static void Write(MelFusionModelConfig config, string tokenizerPath, string directory, IBackend backend, ulong seed)
    {
        config.Validate(config.Description);
        var tokenizer = SentencePieceTokenizer.Load(tokenizerPath);
        if (tokenizer.VocabularySize > config.TextEncoder.VocabSize)
            throw new ArgumentException($"{tokenizerPath}: {tokenizer.VocabularySize} pieces do not fit the text encoder's {config.TextEncoder.VocabSize} embeddings");
        System.IO.Directory.CreateDirectory(directory);
        void Part(string file, ulong part, Action<GraphBuilder, WeightSet> build)
        {
            using var weights = WeightSet.Initialize(backend, seed * 16 + part);
            build(new GraphBuilder(), weights);
            weights.Save(Path.Combine(directory, file), new Dictionary<string, string> { ["format"] = "melfusion", ["initialised_seed"] = seed.ToString() });
        }

        Part(MelFusionModel.TextEncoderFile, 1, (g, w) =>
        {
            using var encoder = new T5Encoder(config.TextEncoder);
            encoder.Build(g, w, g.Input("ids", DType.I32, 1, 2), g.Input("mask", DType.I32, 1, 2));
        });
        // The music UNet's synapse alphas exist only where image features arrive, so build both UNets together.
        using (var imageWeights = WeightSet.Initialize(backend, seed * 16 + 2))
        using (var musicWeights = WeightSet.Initialize(backend, seed * 16 + 3))
        {
            var g = new GraphBuilder();
            int d = config.TextEncoder.ModelDim;
            var text = g.Input("text", DType.F32, 1, 2, d);
            var t = g.Input("t", DType.F32, 1);
            int f = config.ImageUnet.DownsampleFactor;
            var image = g.Input("image", DType.F32, 1, config.ImageUnet.InChannels, f, f);
            var taps = new UNet2DConditionModel(config.ImageUnet).BuildWithTaps(g, imageWeights, image, t, text).Taps;
            var music = g.Input("music", DType.F32, 1, config.MusicUnet.InChannels, config.MusicUnet.DownsampleFactor, config.MusicUnet.DownsampleFactor);
            new UNet2DConditionModel(config.MusicUnet).Build(g, musicWeights, music, t, text, synapse: new UNetSynapse(taps));
            imageWeights.Save(Path.Combine(directory, MelFusionModel.ImageUnetFile));
            musicWeights.Save(Path.Combine(directory, MelFusionModel.MusicUnetFile));
        }
        Part(MelFusionModel.MusicVaeFile, 4, (g, w) => BuildVae(g, w, config.MusicVae));
        Part(MelFusionModel.ImageVaeFile, 5, (g, w) => BuildVae(g, w, config.ImageVae));
        Part(MelFusionModel.VocoderFile, 6, (g, w) =>
            new HifiGan(config.Vocoder).Build(g, w, g.Input("mel", DType.F32, 1, config.Vocoder.MelChannels, 2)));
        File.Copy(tokenizerPath, Path.Combine(directory, MelFusionModel.TokenizerFile), overwrite: true);
        (config with { Trained = false }).Write(Path.Combine(directory, MelFusionModelConfig.FileName));
    }

    private static void BuildVae(GraphBuilder g, WeightSet w, AutoencoderKlConfig c)
    {
        int size = c.Downsampling;
        var vae = new AutoencoderKl(c);
        vae.Encode(g, w, g.Input("x", DType.F32, 1, c.InChannels, size, size));
        vae.Decode(g, w, g.Input("z", DType.F32, 1, c.LatentChannels, 1, 1));
    }
}
