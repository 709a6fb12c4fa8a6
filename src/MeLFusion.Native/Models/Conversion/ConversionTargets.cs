using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Models.Unet;
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
public sealed record ConversionTargets(T5Config TextEncoder, AutoencoderKlConfig MusicVae, AutoencoderKlConfig ImageVae, HifiGanConfig Vocoder,
    UNetConfig MusicUnet, UNetConfig ImageUnet)
{
    /// <summary>FLAN-T5-large, AudioLDM's music VAE, Stable Diffusion's image VAE, AudioLDM's 16 kHz HiFi-GAN, Tango's and SD-2.1's UNets.</summary>
    public static ConversionTargets MeLFusion { get; } = new(T5Config.FlanT5Large, AutoencoderKlConfig.AudioLdmMusic,
        AutoencoderKlConfig.StableDiffusion, HifiGanConfig.AudioLdm16k, UNetConfig.TangoMusic, UNetConfig.StableDiffusion21);

    /// <summary>Checks the converted part at <paramref name="path"/> against its engine model.</summary>
    public PartCheck Check(WeightPart part, string path)
    {
        (string Model, Action<GraphBuilder, WeightSet> Build) t = part switch
        {
            WeightPart.TextEncoder => ("T5 encoder", (g, w) => PartGraphs.TextEncoder(g, w, TextEncoder)),
            WeightPart.MusicVae => ("music AutoencoderKL", (g, w) => PartGraphs.Vae(g, w, MusicVae)),
            WeightPart.ImageVae => ("image AutoencoderKL", (g, w) => PartGraphs.Vae(g, w, ImageVae)),
            WeightPart.Vocoder => ("HiFi-GAN", (g, w) => PartGraphs.Vocoder(g, w, Vocoder)),
            WeightPart.MusicUnet => ("music UNet", (g, w) => PartGraphs.Unet(g, w, MusicUnet, withSynapse: true)),
            WeightPart.ImageUnet => ("image UNet", (g, w) => PartGraphs.Unet(g, w, ImageUnet, withSynapse: false)),
            _ => throw new ArgumentOutOfRangeException(nameof(part), part, "unknown part"),
        };
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
        var requested = weights.RequestedNames.ToHashSet(StringComparer.Ordinal);
        return new PartCheck(t.Model, weights.Names.Where(n => !requested.Contains(n)).ToArray());
    }
}
