using System.CommandLine;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Pipelines;

namespace MeLFusion.Cli.Commands;

/// <summary><c>init</c>: writes a randomly initialised weights directory (the starting point of training).</summary>
public static class InitCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = $"configuration preset: {string.Join(", ", MelFusionModelConfig.Presets.Keys)}", DefaultValueFactory = _ => "tiny" };
        var config = new Option<FileInfo?>("--config") { Description = "a model.json to initialise instead of a preset" };
        var tokenizer = new Option<FileInfo>("--tokenizer") { Description = "SentencePiece unigram model (spiece.model)", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "weights directory to write", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "initialisation seed", DefaultValueFactory = _ => 0 };
        var command = new Command("init", "Write a randomly initialised MeLFusion weights directory") { preset, config, tokenizer, output, seed };
        command.SetAction(parse =>
        {
            try
            {
                var file = parse.GetValue(config);
                string name = parse.GetValue(preset)!;
                var model = file is not null ? MelFusionModelConfig.Read(file.FullName)
                    : MelFusionModelConfig.Presets.TryGetValue(name, out var p) ? p
                    : throw new ArgumentException($"unknown preset '{name}'; choose one of: {string.Join(", ", MelFusionModelConfig.Presets.Keys)}");
                using var backend = new CpuBackend();
                var dir = parse.GetValue(output)!;
                ModelInitializer.Write(model, parse.GetValue(tokenizer)!.FullName, dir.FullName, backend, parse.GetValue(seed));
                Console.WriteLine($"wrote an untrained '{model.Description}' to {dir.FullName}");
                return 0;
            }
            catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
