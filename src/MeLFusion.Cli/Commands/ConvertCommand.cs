using System.CommandLine;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Conversion;
using MeLFusion.Native.Runtime;
using Spectre.Console;

namespace MeLFusion.Cli.Commands;

/// <summary>
/// <c>convert -o DIR [sources]</c>: converts Tango / MeLFusion / Stable Diffusion / FLAN-T5 / HiFi-GAN checkpoints
/// into the engine's per-part safetensors files, each checked against the engine model that loads it.
/// </summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--output", "-o") { Description = "directory for the converted parts (created if missing)", Required = true };
        var tangoMain = Source("--tango-main", "Tango pytorch_model_main.bin or a MeLFusion checkpoint: unet.* -> music_unet, text_encoder.* -> text_encoder");
        var tangoVae = Source("--tango-vae", "Tango pytorch_model_vae.bin: LDM VAE -> music_vae, vocoder.* -> vocoder");
        var sdUnet = Source("--sd-unet", "Stable Diffusion 2.1 diffusers unet/diffusion_pytorch_model.safetensors -> image_unet");
        var sdVae = Source("--sd-vae", "Stable Diffusion diffusers vae/diffusion_pytorch_model.safetensors -> image_vae (renamed to LDM names)");
        var t5 = Source("--t5", "FLAN-T5 model.safetensors -> text_encoder (instead of --tango-main's)");
        var vocoder = Source("--vocoder", "HiFi-GAN generator (jik876 weight norm, parametrizations, diffusers SpeechT5HifiGan or plain) -> vocoder (instead of --tango-vae's)");
        var tokenizer = Source("--tokenizer", "FLAN-T5 spiece.model, copied into the output directory");
        var dtype = new Option<string>("--dtype") { Description = "storage type of the written weights", DefaultValueFactory = _ => "f32" };
        dtype.AcceptOnlyFromAmong("f32", "f16", "bf16");
        var allowExtra = new Option<bool>("--allow-extra") { Description = "ignore source tensors that fit no part and keep part tensors the engine model does not use" };

        var command = new Command("convert", "Convert checkpoints into the engine's per-part safetensors files")
        {
            output, tangoMain, tangoVae, sdUnet, sdVae, t5, vocoder, tokenizer, dtype, allowExtra,
        };
        command.SetAction(parse =>
        {
            var sources = new ConversionSources
            {
                TangoMain = parse.GetValue(tangoMain)?.FullName,
                TangoVae = parse.GetValue(tangoVae)?.FullName,
                StableDiffusionUnet = parse.GetValue(sdUnet)?.FullName,
                StableDiffusionVae = parse.GetValue(sdVae)?.FullName,
                FlanT5 = parse.GetValue(t5)?.FullName,
                Vocoder = parse.GetValue(vocoder)?.FullName,
                Tokenizer = parse.GetValue(tokenizer)?.FullName,
            };
            var options = new ConversionOptions
            {
                DType = parse.GetValue(dtype) switch { "f16" => DType.F16, "bf16" => DType.BF16, _ => DType.F32 },
                AllowExtra = parse.GetValue(allowExtra),
            };
            return Run(sources, parse.GetValue(output)!.FullName, options);
        });
        return command;
    }

    private static Option<FileInfo> Source(string name, string description)
    {
        var option = new Option<FileInfo>(name) { Description = description };
        option.AcceptExistingOnly();
        return option;
    }

    private static int Run(ConversionSources sources, string outputDirectory, ConversionOptions options)
    {
        try
        {
            var report = CheckpointConverter.Convert(sources, outputDirectory, options, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
            var table = new Table().AddColumns("file", "tensors", "MiB", "checked against", "from");
            foreach (var p in report.Parts)
                table.AddRow(Markup.Escape(Path.GetFileName(p.Path)), p.Tensors.ToString(), $"{p.Bytes / 1048576.0:F1}",
                    Markup.Escape(p.Check.Model), Markup.Escape(Path.GetFileName(p.Source)));
            AnsiConsole.Write(table);
            foreach (var s in report.Sources)
            {
                foreach (var group in s.Dropped.GroupBy(d => d.Reason))
                    AnsiConsole.MarkupLine($"dropped from {Markup.Escape(Path.GetFileName(s.Path))}: {group.Count()} x {Markup.Escape(group.Key)}");
                if (s.Unrecognised.Count > 0)
                    AnsiConsole.MarkupLine($"[yellow]ignored from {Markup.Escape(Path.GetFileName(s.Path))}[/]: {Markup.Escape(CheckpointConverter.List(s.Unrecognised))}");
            }
            foreach (var p in report.Parts.Where(p => p.Check is { Extra.Count: > 0 }))
                AnsiConsole.MarkupLine($"[yellow]kept unused in {Markup.Escape(Path.GetFileName(p.Path))}[/]: {Markup.Escape(CheckpointConverter.List(p.Check.Extra))}");
            return 0;
        }
        catch (Exception e) when (e is IOException or CheckpointException or ArgumentException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
