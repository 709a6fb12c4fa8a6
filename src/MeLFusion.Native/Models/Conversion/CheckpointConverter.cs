using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Conversion;

/// <summary>
/// Checkpoints to convert; each is optional. A part comes from one source: <see cref="FlanT5"/> replaces the text
/// encoder of <see cref="TangoMain"/>, <see cref="Vocoder"/> the vocoder of <see cref="TangoVae"/>.
/// </summary>
public sealed record ConversionSources
{
    /// <summary>Tango's pytorch_model_main.bin or a MeLFusion checkpoint (unet.* → music UNet, text_encoder.* → text encoder).</summary>
    public string? TangoMain { get; init; }

    /// <summary>Tango's pytorch_model_vae.bin (LDM VAE → music VAE, vocoder.* → vocoder).</summary>
    public string? TangoVae { get; init; }

    /// <summary>diffusers Stable Diffusion 2.1 unet/diffusion_pytorch_model.safetensors (or a checkpoint wrapping that state dict).</summary>
    public string? StableDiffusionUnet { get; init; }

    /// <summary>diffusers Stable Diffusion vae/diffusion_pytorch_model.safetensors.</summary>
    public string? StableDiffusionVae { get; init; }

    /// <summary>HF FLAN-T5 model.safetensors (encoder tensors are used).</summary>
    public string? FlanT5 { get; init; }

    /// <summary>A HiFi-GAN generator: jik876 (weight norm), torch parametrizations, diffusers SpeechT5HifiGan or plain.</summary>
    public string? Vocoder { get; init; }

    /// <summary>The FLAN-T5 SentencePiece model, copied as spiece.model.</summary>
    public string? Tokenizer { get; init; }
}

public sealed record ConversionOptions
{
    /// <summary>Storage type of the written tensors: F32, F16 or BF16.</summary>
    public DType DType { get; init; } = DType.F32;

    /// <summary>Keep going when a source holds tensors no converter recognised or a part holds tensors its model does not use.</summary>
    public bool AllowExtra { get; init; }

    public ConversionTargets Targets { get; init; } = ConversionTargets.MeLFusion;
}

/// <summary>One written part and the result of checking it against its engine model.</summary>
public sealed record PartReport(WeightPart Part, string Path, string Source, int Tensors, long Bytes, PartCheck Check);

/// <summary>What became of a source's tensors that went into no part.</summary>
public sealed record SourceReport(string Path, IReadOnlyList<DroppedTensor> Dropped, IReadOnlyList<string> Unrecognised);

public sealed record ConversionReport(IReadOnlyList<PartReport> Parts, IReadOnlyList<SourceReport> Sources, string? Tokenizer);

/// <summary>
/// Converts Tango, MeLFusion, Stable Diffusion, FLAN-T5 and HiFi-GAN checkpoints into the engine's per-part
/// safetensors files (text_encoder, music_unet, image_unet, music_vae, image_vae, vocoder) in one directory.
/// Every source is planned before anything is written, so an unrecognised tensor fails fast. Each part is written
/// beside its target, checked against its engine model, and only then moved into place.
/// </summary>
public static class CheckpointConverter
{
    private const int ListedNames = 12;

    public static ConversionReport Convert(ConversionSources sources, string outputDirectory, ConversionOptions options, Action<string>? log = null)
    {
        if (options.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new ArgumentException($"convert: weights are stored as F32, F16 or BF16, not {options.DType}");
        if (new[] { sources.TangoMain, sources.TangoVae, sources.StableDiffusionUnet, sources.StableDiffusionVae, sources.FlanT5, sources.Vocoder, sources.Tokenizer }
            .All(s => s is null))
            throw new ArgumentException("convert: no checkpoint given");

        var opened = new List<TensorSource>();
        try
        {
            var plans = new List<PartPlan>();
            foreach (var (path, plan) in PlanSteps(sources))
            {
                var source = TensorSource.Open(path);
                opened.Add(source);
                plans.AddRange(plan(source));
                if (source.Unclaimed.Count > 0 && !options.AllowExtra)
                    throw new CheckpointException($"{path}: {source.Unclaimed.Count} tensors fit no part: {List(source.Unclaimed)} (--allow-extra ignores them)");
            }
            if (sources.Tokenizer is { } spiece) CheckTokenizer(spiece, options.Targets.TextEncoder);

            Directory.CreateDirectory(outputDirectory);
            var parts = new List<PartReport>();
            foreach (var source in opened)
            {
                foreach (var plan in plans.Where(p => p.Source == source))
                    parts.Add(WritePart(plan, outputDirectory, options, log));
                source.Dispose();
            }
            string? tokenizer = null;
            if (sources.Tokenizer is { } model)
            {
                tokenizer = Path.Combine(outputDirectory, "spiece.model");
                File.Copy(model, tokenizer, overwrite: true);
                log?.Invoke($"spiece.model: copied from {model}");
            }
            return new ConversionReport(parts, opened.Select(s => new SourceReport(s.Path, s.Dropped, s.Unclaimed)).ToArray(), tokenizer);
        }
        finally
        {
            foreach (var source in opened) source.Dispose();
        }
    }

    /// <summary>Each given source with the parts it provides.</summary>
    private static IEnumerable<(string Path, Func<TensorSource, IEnumerable<PartPlan>> Plan)> PlanSteps(ConversionSources s)
    {
        if (s.TangoMain is { } main)
            yield return (main, source => TangoMain(source, textEncoder: s.FlanT5 is null));
        if (s.TangoVae is { } vae)
            yield return (vae, source => TangoVae(source, vocoder: s.Vocoder is null));
        if (s.StableDiffusionUnet is { } unet)
            yield return (unet, source => [Single(source, WeightPart.ImageUnet, "a diffusers UNet", UnetConversion.Marker, (p, prefix) => UnetConversion.Plan(p, prefix, music: false))]);
        if (s.StableDiffusionVae is { } sdVae)
            yield return (sdVae, source => [Single(source, WeightPart.ImageVae, "a diffusers AutoencoderKL", VaeConversion.Marker, VaeConversion.PlanDiffusers)]);
        if (s.FlanT5 is { } t5)
            yield return (t5, source => [Single(source, WeightPart.TextEncoder, "a T5 encoder", T5Conversion.Marker, T5Conversion.Plan)]);
        if (s.Vocoder is { } vocoder)
            yield return (vocoder, source => [Single(source, WeightPart.Vocoder, "a HiFi-GAN generator", HifiGanConversion.Marker, HifiGanConversion.Plan)]);
    }

    private static IEnumerable<PartPlan> TangoMain(TensorSource source, bool textEncoder)
    {
        var unet = new PartPlan(WeightPart.MusicUnet, source);
        UnetConversion.Plan(unet, "unet.", music: true);
        Require(unet, "unet.");
        yield return unet;
        if (textEncoder)
        {
            var t5 = new PartPlan(WeightPart.TextEncoder, source);
            T5Conversion.Plan(t5, "text_encoder.");
            Require(t5, "text_encoder.");
            yield return t5;
        }
        else
        {
            foreach (string name in source.NamesUnder("text_encoder.")) source.Drop(name, "text encoder taken from the FLAN-T5 checkpoint instead");
        }
    }

    private static IEnumerable<PartPlan> TangoVae(TensorSource source, bool vocoder)
    {
        string prefix = source.PrefixOf(VaeConversion.Marker) ?? throw Missing(source, "an LDM autoencoder", VaeConversion.Marker);
        var vae = new PartPlan(WeightPart.MusicVae, source);
        VaeConversion.PlanLdm(vae, prefix);
        yield return vae;
        if (vocoder)
        {
            var generator = new PartPlan(WeightPart.Vocoder, source);
            HifiGanConversion.Plan(generator, prefix + "vocoder.");
            Require(generator, prefix + "vocoder.");
            yield return generator;
        }
        else
        {
            foreach (string name in source.NamesUnder(prefix + "vocoder.")) source.Drop(name, "vocoder taken from the vocoder checkpoint instead");
        }
    }

    /// <summary>A source holding one model, found under whatever prefix holds <paramref name="marker"/>.</summary>
    private static PartPlan Single(TensorSource source, WeightPart part, string model, string marker, Action<PartPlan, string> plan)
    {
        string prefix = source.PrefixOf(marker) ?? throw Missing(source, model, marker);
        var result = new PartPlan(part, source);
        plan(result, prefix);
        return result;
    }

    private static void Require(PartPlan plan, string prefix)
    {
        if (plan.Tensors.Count == 0) throw new CheckpointException($"{plan.Source.Path}: no '{prefix}*' tensors for {plan.Part.FileName()}");
    }

    private static CheckpointException Missing(TensorSource source, string what, string marker) =>
        new($"{source.Path}: not {what} (no '{marker}' under any prefix)");

    /// <summary>The tokenizer must parse and its ids must index the text encoder's embedding.</summary>
    private static void CheckTokenizer(string path, T5Config config)
    {
        var tokenizer = SentencePieceTokenizer.Load(path);
        if (tokenizer.VocabularySize > config.VocabSize)
            throw new CheckpointException($"{path}: {tokenizer.VocabularySize} pieces do not fit the text encoder's {config.VocabSize}-row embedding");
    }

    private static PartReport WritePart(PartPlan plan, string directory, ConversionOptions options, Action<string>? log)
    {
        string fileName = plan.Part.FileName();
        string target = Path.Combine(directory, fileName);
        string pending = Path.Combine(directory, $".{fileName}.unchecked");
        log?.Invoke($"{fileName}: {plan.Tensors.Count} tensors from {plan.Source.Path}");
        try
        {
            plan.Write(pending, options.DType);
            var check = options.Targets.Check(plan.Part, pending);
            if (check.Extra.Count > 0 && !options.AllowExtra)
                throw new CheckpointException($"{fileName}: {check.Extra.Count} tensors are not used by the {check.Model}: {List(check.Extra)} (--allow-extra keeps them)");
            File.Move(pending, target, overwrite: true);
            log?.Invoke($"{fileName}: written; loads into the {check.Model}" + (check.Extra.Count > 0 ? $" ({check.Extra.Count} unused tensors kept)" : ""));
            return new PartReport(plan.Part, target, plan.Source.Path, plan.Tensors.Count, new FileInfo(target).Length, check);
        }
        finally
        {
            File.Delete(pending);
        }
    }

    /// <summary>The first few names of a list, for messages.</summary>
    public static string List(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(ListedNames)) + (names.Count > ListedNames ? $", ... ({names.Count - ListedNames} more)" : "");
}
