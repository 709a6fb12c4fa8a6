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

        Part(WeightPart.TextEncoder.FileName(), 1, (g, w) => PartGraphs.TextEncoder(g, w, config.TextEncoder));
        Part(WeightPart.ImageUnet.FileName(), 2, (g, w) => PartGraphs.Unet(g, w, config.ImageUnet, withSynapse: false));
        Part(WeightPart.MusicUnet.FileName(), 3, (g, w) => PartGraphs.Unet(g, w, config.MusicUnet, withSynapse: true));
        Part(WeightPart.MusicVae.FileName(), 4, (g, w) => PartGraphs.Vae(g, w, config.MusicVae));
        Part(WeightPart.ImageVae.FileName(), 5, (g, w) => PartGraphs.Vae(g, w, config.ImageVae));
        Part(WeightPart.Vocoder.FileName(), 6, (g, w) => PartGraphs.Vocoder(g, w, config.Vocoder));
        File.Copy(tokenizerPath, Path.Combine(directory, MelFusionModel.TokenizerFile), overwrite: true);
        (config with { Trained = false }).Write(Path.Combine(directory, MelFusionModelConfig.FileName));
    }
}
