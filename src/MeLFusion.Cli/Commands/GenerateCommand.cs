using System.CommandLine;
using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using MeLFusion.Native.Backends;
using MeLFusion.Native.IO.Audio;
using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Pipelines;
using Spectre.Console;

namespace MeLFusion.Cli.Commands;

/// <summary><c>generate</c>: text (+ image) to a 16-bit WAV file.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var text = new Option<string>("--text") { Description = "the prompt", Required = true };
        var image = new Option<FileInfo?>("--image") { Description = "a PNG or JPEG image whose content steers the music" };
        var seconds = new Option<double>("--seconds") { Description = "length of the music", DefaultValueFactory = _ => 10.24 };
        var steps = new Option<int>("--steps") { Description = "diffusion steps (the paper: 200 with Ddpm)", DefaultValueFactory = _ => GenerationRequest.DefaultSteps };
        var guidance = new Option<float>("--guidance") { Description = "classifier-free guidance scale", DefaultValueFactory = _ => GenerationRequest.DefaultGuidance };
        var scheduler = new Option<SamplerKind>("--scheduler") { Description = "sampler", DefaultValueFactory = _ => GenerationRequest.DefaultSampler };
        var seed = new Option<ulong>("--seed") { Description = "noise seed: the same seed on the same device gives the same music", DefaultValueFactory = _ => 0 };
        var synapse = new Option<SynapseMode>("--synapse") { Description = "how the image enters: Paper (DDIM inversion) or CodeCompatible", DefaultValueFactory = _ => SynapseMode.Paper };
        var inversionSteps = new Option<int>("--inversion-steps") { Description = "DDIM inversion steps of the image (Paper synapse)", DefaultValueFactory = _ => GenerationRequest.DefaultInversionSteps };
        var device = new Option<string>("--device") { Description = $"one of: {string.Join(", ", BackendFactory.Names)}", DefaultValueFactory = _ => "cpu" };
        var weights = new Option<DirectoryInfo?>("--weights") { Description = "weights directory (default: the repository's weights/)" };
        var output = new Option<FileInfo>("--out") { Description = "output WAV file", DefaultValueFactory = _ => new FileInfo("music.wav") };
        var timingsJson = new Option<FileInfo?>("--timings-json") { Description = "also write the stage times, the time per diffusion step and the peak memory to this JSON file" };
        var command = new Command("generate", "Generate music from a prompt and optionally an image")
        {
            text, image, seconds, steps, guidance, scheduler, seed, synapse, inversionSteps, device, weights, output, timingsJson,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Run(new Options(
            parse.GetValue(text)!, parse.GetValue(image), parse.GetValue(seconds), parse.GetValue(steps), parse.GetValue(guidance),
            parse.GetValue(scheduler), parse.GetValue(seed), parse.GetValue(synapse), parse.GetValue(inversionSteps), parse.GetValue(device)!,
            parse.GetValue(weights), parse.GetValue(output)!, parse.GetValue(timingsJson)), cancellation)));
        return command;
    }

    private sealed record Options(string Text, FileInfo? Image, double Seconds, int Steps, float Guidance, SamplerKind Sampler,
        ulong Seed, SynapseMode Synapse, int InversionSteps, string Device, DirectoryInfo? Weights, FileInfo Output, FileInfo? TimingsJson);

    private static int Run(Options o, CancellationToken cancellation)
    {
        try
        {
            string weightsDir = o.Weights?.FullName ?? WeightsLocator.Default();
            RgbImage? picture = o.Image is null ? null : ImageFile.Read(o.Image.FullName);
            using var backend = BackendFactory.Create(o.Device);
            using var model = MelFusionModel.Load(weightsDir, backend);
            using var pipeline = new MusicPipeline(model);
            AnsiConsole.MarkupLine($"[bold]model[/] {Markup.Escape(model.Config.Description)} ({Markup.Escape(weightsDir)}) on [bold]{backend.Name}[/]");
            if (!model.Config.Trained)
                AnsiConsole.MarkupLine("[yellow]these weights are UNTRAINED (randomly initialised): the output is noise-like, not music[/]");
            var request = new GenerationRequest(o.Text, picture, o.Seconds, o.Steps, o.Guidance, o.Sampler, o.Seed, o.Synapse, o.InversionSteps);
            GenerationResult? result = null;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    result = pipeline.Generate(request, p =>
                    {
                        if (!tasks.TryGetValue(p.Stage, out var task))
                            tasks[p.Stage] = task = ctx.AddTask(p.Stage, maxValue: Math.Max(1, p.Steps));
                        task.Value = p.Step;
                        foreach (var other in tasks.Values.Where(t => t != task)) other.Value = other.MaxValue;
                    }, cancellation);
                    foreach (var task in tasks.Values) task.Value = task.MaxValue;
                });
            WavFile.WritePcm16(o.Output.FullName, result!.SampleRate, result.Audio);
            var table = new Table().AddColumns("stage", "seconds");
            foreach (var (stage, time) in result.Timings.Stages) table.AddRow(stage, $"{time.TotalSeconds:F3}");
            table.AddRow("[bold]total[/]", $"[bold]{result.Timings.Total.TotalSeconds:F3}[/]");
            AnsiConsole.Write(table);
            double audioSeconds = (double)result.Audio.Length / result.SampleRate;
            AnsiConsole.MarkupLine($"wrote {Markup.Escape(o.Output.FullName)}: {audioSeconds:F2} s at {result.SampleRate} Hz " +
                $"(real-time factor {result.Timings.Total.TotalSeconds / audioSeconds:F2})");
            if (o.TimingsJson is not null)
            {
                WriteTimingsJson(o.TimingsJson.FullName, o, backend.Name, result, audioSeconds);
                AnsiConsole.MarkupLine($"wrote {Markup.Escape(o.TimingsJson.FullName)}");
            }
            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled; nothing written");
            return 130;
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or MeLFusion.Native.Models.CheckpointException
                                      or MeLFusion.Native.Interop.Cuda.CudaUnavailableException or NotSupportedException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// The run's timings for scripts (benchmarks/pipeline_compare.py): seconds per stage in run order, the diffusion
    /// stage divided by the steps (one guided UNet step, batch 2, with the image UNet when there is an image), and the
    /// process's peak resident memory (VmHWM on Linux, which also counts the native arenas of the plans).
    /// </summary>
    private static void WriteTimingsJson(string path, Options o, string device, GenerationResult result, double audioSeconds)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        json.WriteStartObject();
        json.WriteString("device", device);
        json.WriteNumber("steps", o.Steps);
        json.WriteNumber("audio_seconds", audioSeconds);
        json.WriteBoolean("image", o.Image is not null);
        json.WriteString("synapse", o.Synapse.ToString());
        json.WriteStartObject("stages");
        foreach (var (stage, time) in result.Timings.Stages) json.WriteNumber(stage, time.TotalSeconds);
        json.WriteEndObject();
        var diffusion = result.Timings.Stages.FirstOrDefault(s => s.Stage == "diffusion").Time;
        json.WriteNumber("unet_step", diffusion.TotalSeconds / o.Steps);
        json.WriteNumber("total", result.Timings.Total.TotalSeconds);
        json.WriteNumber("peak_rss_mib", Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0));
        json.WriteEndObject();
    }
}

/// <summary>Finds the repository's weights/ directory from the working directory or the program's location.</summary>
internal static class WeightsLocator
{
    public static string Default()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "weights");
                if (File.Exists(Path.Combine(candidate, MelFusionModelConfig.FileName))) return candidate;
            }
        throw new DirectoryNotFoundException("no weights/model.json found above the working directory; pass --weights DIR");
    }
}
