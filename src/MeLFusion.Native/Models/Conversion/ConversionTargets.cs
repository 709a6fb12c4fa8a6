using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Conversion;

/// <summary>The result of checking a converted part against the engine model that will load it.</summary>
/// <param name="Model">The model checked against, e.g. "T5 encoder".</param>
/// <param name="Extra">Tensors in the part that the model never asks for.</param>
public sealed record PartCheck(string Model, IReadOnlyList<string> Extra);

/// <summary>
/// The configurations of the engine models that converted parts must fit (defaults: MeLFusion's). A part is checked
/// by building its model's graph once on a <see cref="WeightSet"/> opened on the converted file: the models ask for
/// every tensor by name and shape, so a missing or misshapen tensor throws a <see cref="CheckpointException"/> naming
/// it, and the tensors nobody asked for are the extras.
/// </summary>
public sealed record ConversionTargets(T5Config TextEncoder, AutoencoderKlConfig MusicVae, AutoencoderKlConfig ImageVae, HifiGanConfig Vocoder)
{
    /// <summary>FLAN-T5-large, AudioLDM's music VAE, Stable Diffusion's image VAE and AudioLDM's 16 kHz HiFi-GAN.</summary>
    public static ConversionTargets MeLFusion { get; } = new(T5Config.FlanT5Large, AutoencoderKlConfig.AudioLdmMusic,
        AutoencoderKlConfig.StableDiffusion, HifiGanConfig.AudioLdm16k);

    /// <summary>
    /// Checks the converted part at <paramref name="path"/>; null for a part with no engine model in this build
    /// (the UNets), whose names cannot be checked.
    /// </summary>
    public PartCheck? Check(WeightPart part, string path)
    {
        (string Model, Action<GraphBuilder, WeightSet> Build)? target = part switch
        {
            WeightPart.TextEncoder => ("T5 encoder", BuildTextEncoder),
            WeightPart.MusicVae => ("music AutoencoderKL", (g, w) => BuildVae(g, w, MusicVae)),
            WeightPart.ImageVae => ("image AutoencoderKL", (g, w) => BuildVae(g, w, ImageVae)),
            WeightPart.Vocoder => ("HiFi-GAN", (g, w) => new HifiGan(Vocoder).Build(g, w, g.Input("mel", DType.F32, 1, Vocoder.MelChannels, 1))),
            _ => null,
        };
        if (target is not { } t) return null;
        using var backend = new CpuBackend();
        using var weights = new WeightSet(backend, path);
        var graph = new GraphBuilder();
        try
        {
            t.Build(graph, weights);
        }
        catch (CheckpointException e)
        {
            throw new CheckpointException($"{part.FileName()} does not fit the {t.Model}: {e.Message}");
        }
        var requested = graph.Values.Where(v => v.Kind == ValueKind.Constant && v.Name is not null).Select(v => v.Name!).ToHashSet(StringComparer.Ordinal);
        return new PartCheck(t.Model, weights.Names.Where(n => !requested.Contains(n)).ToArray());
    }

    private void BuildTextEncoder(GraphBuilder g, WeightSet weights)
    {
        using var encoder = new T5Encoder(TextEncoder);
        encoder.Build(g, weights, g.Input("ids", DType.I32, 1, 1), g.Input("mask", DType.I32, 1, 1));
    }

    /// <summary>Encoder on the smallest input that survives every downsampling, decoder on a 1×1 latent.</summary>
    private static void BuildVae(GraphBuilder g, WeightSet weights, AutoencoderKlConfig config)
    {
        var vae = new AutoencoderKl(config);
        int side = config.Downsampling;
        vae.Encode(g, weights, g.Input("data", DType.F32, 1, config.InChannels, side, side));
        vae.Decode(g, weights, g.Input("latent", DType.F32, 1, config.LatentChannels, 1, 1));
    }
}
