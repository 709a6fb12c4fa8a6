using System.CommandLine;
using MeLFusion.Native.Backends;
using MeLFusion.Native.Models;
using MeLFusion.Native.Training;
using MeLFusion.Native.Training.Data;
using MeLFusion.Native.Training.Tasks;
using Spectre.Console;

namespace MeLFusion.Cli.Commands;

/// <summary>
/// <c>train &lt;kind&gt;</c>: trains one part of the system (from a config file, flags overriding it), with a progress
/// bar, <c>log.csv</c> + <c>loss.svg</c>, periodic and Ctrl-C checkpoints in the output directory, <c>--resume</c>,
/// and at the end the trained part written as <c>&lt;out&gt;/&lt;part&gt;.safetensors</c>.
/// </summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var kind = new Argument<string>("kind") { Description = $"what to train: {string.Join(", ", TrainingConfig.Kinds)}" };
        kind.AcceptOnlyFromAmong(TrainingConfig.Kinds);
        var config = new Option<FileInfo?>("--config") { Description = "training configuration (JSON, snake_case keys of TrainingConfig); flags override it" };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "run directory: checkpoint, log.csv, loss.svg, the trained part", Required = true };
        var model = new Option<DirectoryInfo?>("--model") { Description = "weights directory with model.json and the frozen parts (default: the repository's weights/)" };
        var train = new Option<FileInfo?>("--train") { Description = "training manifest (JSON lines: captions, location, img_path)" };
        var validation = new Option<FileInfo?>("--validation") { Description = "validation manifest" };
        var synthetic = new Option<int?>("--synthetic") { Description = "train on this many procedural examples instead of manifests (smoke runs)" };
        var steps = new Option<long?>("--steps") { Description = "optimizer steps" };
        var batch = new Option<int?>("--batch-size") { Description = "examples per micro-batch" };
        var accumulation = new Option<int?>("--accumulation") { Description = "micro-batches per optimizer step" };
        var learningRate = new Option<double?>("--lr") { Description = "peak learning rate" };
        var schedule = new Option<LearningRateScheduleKind?>("--schedule") { Description = "learning-rate schedule" };
        var warmup = new Option<long?>("--warmup") { Description = "linear warm-up steps" };
        var ema = new Option<float?>("--ema") { Description = "keep an EMA of the weights with this decay (exported instead of the raw weights)" };
        var checkpointing = new Option<bool>("--gradient-checkpointing") { Description = "recompute each block's activations in the backward pass (less memory, about one more forward)" };
        var seed = new Option<ulong?>("--seed") { Description = "seed of data order, noise and fresh weights" };
        var clipSeconds = new Option<double?>("--clip-seconds") { Description = "clip length in seconds" };
        var onlyAlpha = new Option<bool>("--train-only-alpha") { Description = "t2m-unet: train only the visual-synapse alphas" };
        var only = new Option<string[]>("--train-only") { Description = "train only tensors under these name prefixes", AllowMultipleArgumentsPerToken = true };
        var classifier = new Option<FileInfo?>("--classifier") { Description = "attribute-classifier: weights to start from (default: a fresh classifier)" };
        var fromScratch = new Option<bool>("--from-scratch") { Description = "start from a fresh initialisation instead of the model directory's part" };
        var alphaInit = new Option<float?>("--synapse-alpha-init") { Description = "t2m-unet from scratch: starting value of the visual-synapse alphas (f = tanh(a/2)/5; default 0 as MeLFusion)" };
        var featureCache = new Option<DirectoryInfo?>("--feature-cache") { Description = "t2m-unet, t2i-unet: keep each example's frozen features (VAE latents, text states) here after their first computation" };
        var resume = new Option<bool>("--resume") { Description = "continue from <out>/checkpoint.safetensors" };
        var badData = new Option<BadDataPolicy?>("--bad-data") { Description = "a missing or corrupt example: Skip (warn) or Fail" };
        var logEvery = new Option<int?>("--log-every") { Description = "steps between log.csv rows" };
        var validateEvery = new Option<int?>("--validate-every") { Description = "steps between validation losses (0: only at the end)" };
        var checkpointEvery = new Option<int?>("--checkpoint-every") { Description = "steps between checkpoints (0: only at the end and on Ctrl-C)" };
        var device = new Option<string>("--device") { Description = $"one of: {string.Join(", ", BackendFactory.Names)}", DefaultValueFactory = _ => "cpu" };
        var command = new Command("train", "Train a part of the system (UNets, VAEs, vocoder, text encoder), or the attribute classifier that evaluates it, on the graph runtime")
        {
            kind, config, output, model, train, validation, synthetic, steps, batch, accumulation, learningRate, schedule, warmup, ema,
            checkpointing, seed, clipSeconds, onlyAlpha, only, classifier, fromScratch, alphaInit, featureCache, resume, badData, logEvery, validateEvery, checkpointEvery, device,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Guard(() =>
        {
            var fromFile = parse.GetValue(config) is { } file ? TrainingConfig.Read(file.FullName) : null;
            var c = fromFile ?? new TrainingConfig();
            var o = c.Optimizer;
            string kindName = parse.GetValue(kind)!;
            // The attribute classifier reads no model directory, so it needs none to be found.
            string ModelDirectory() => fromFile is not null || kindName == AttributeClassifierTask.KindName ? c.Model : WeightsLocator.Default();
            c = c with
            {
                Kind = kindName,
                Model = parse.GetValue(model)?.FullName ?? ModelDirectory(),
                TrainManifest = parse.GetValue(train)?.FullName ?? c.TrainManifest,
                ValidationManifest = parse.GetValue(validation)?.FullName ?? c.ValidationManifest,
                SyntheticExamples = parse.GetValue(synthetic) ?? c.SyntheticExamples,
                BatchSize = parse.GetValue(batch) ?? c.BatchSize,
                ClipSeconds = parse.GetValue(clipSeconds) ?? c.ClipSeconds,
                TrainOnlyAlpha = parse.GetValue(onlyAlpha) || c.TrainOnlyAlpha,
                TrainOnly = parse.GetValue(only) is { Length: > 0 } prefixes ? prefixes : c.TrainOnly,
                ClassifierWeights = parse.GetValue(classifier)?.FullName ?? c.ClassifierWeights,
                FromScratch = parse.GetValue(fromScratch) || c.FromScratch,
                SynapseAlphaInit = parse.GetValue(alphaInit) ?? c.SynapseAlphaInit,
                FeatureCache = parse.GetValue(featureCache)?.FullName ?? c.FeatureCache,
                BadData = parse.GetValue(badData) ?? c.BadData,
                LogEvery = parse.GetValue(logEvery) ?? c.LogEvery,
                ValidateEvery = parse.GetValue(validateEvery) ?? c.ValidateEvery,
                CheckpointEvery = parse.GetValue(checkpointEvery) ?? c.CheckpointEvery,
                Optimizer = o with
                {
                    Steps = parse.GetValue(steps) ?? o.Steps,
                    AccumulationSteps = parse.GetValue(accumulation) ?? o.AccumulationSteps,
                    LearningRate = parse.GetValue(learningRate) ?? o.LearningRate,
                    Schedule = parse.GetValue(schedule) ?? o.Schedule,
                    WarmupSteps = parse.GetValue(warmup) ?? o.WarmupSteps,
                    EmaDecay = parse.GetValue(ema) ?? o.EmaDecay,
                    GradientCheckpointing = parse.GetValue(checkpointing) || o.GradientCheckpointing,
                    Seed = parse.GetValue(seed) ?? o.Seed,
                },
            };
            return Run(c, parse.GetValue(output)!.FullName, parse.GetValue(resume), parse.GetValue(device)!, cancellation);
        })));
        return command;
    }

    private static int Run(TrainingConfig config, string directory, bool resume, string deviceName, CancellationToken cancellation)
    {
        config.Validate();
        Directory.CreateDirectory(directory);
        string checkpoint = Path.Combine(directory, TrainingRun.CheckpointFile);
        if (resume && !File.Exists(checkpoint)) throw new FileNotFoundException($"--resume: no {checkpoint}", checkpoint);
        if (!resume && File.Exists(checkpoint))
            throw new IOException($"{checkpoint} exists: pass --resume to continue that run, or choose another --out");
        config.Write(Path.Combine(directory, "config.json"));

        using var backend = BackendFactory.Create(deviceName);
        using var task = config.CreateTask(backend, resume ? checkpoint : null);
        using var trainer = resume
            ? Trainer.Resume(task, config.Optimizer, config.Selection, checkpoint)
            : new Trainer(task, config.Optimizer, config.Selection);
        AnsiConsole.MarkupLine($"[bold]train {config.Kind}[/] on [bold]{backend.Name}[/]: {trainer.Parameters.Slots.Count} tensors " +
            $"({trainer.Parameters.Count:N0} values, {Markup.Escape(config.Selection.Description)}), arenas {trainer.ArenaBytes / 1048576.0:F1} MiB, " +
            $"from step {trainer.Step} to {config.Optimizer.Steps}");

        // Ctrl-C (Program's handler cancels the token) finishes the current step and writes a checkpoint.
        var run = new TrainingRun(trainer, directory, config.Cadence, config.BatchSize);
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var bar = context.AddTask("training", maxValue: config.Optimizer.Steps);
                bar.Value = trainer.Step;
                var clock = System.Diagnostics.Stopwatch.StartNew();
                long first = trainer.Step;
                run.Run(cancellation, (result, entry) =>
                {
                    bar.Value = result.Step;
                    double stepsPerSecond = (result.Step - first) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
                    bar.Description = $"step {result.Step} loss {result.Loss:G4} |g| {result.GradientNorm:G3} lr {result.LearningRate:G3} {stepsPerSecond:F2} steps/s"
                        + (entry is { ValidationLoss: var v } && float.IsFinite(v) ? $" val {v:G4}" : "");
                });
            });

        if (trainer.Step < config.Optimizer.Steps)
        {
            AnsiConsole.MarkupLine($"stopped at step {trainer.Step}; checkpoint in [bold]{Markup.Escape(checkpoint)}[/] (continue with --resume)");
            return 130;
        }
        string part = Path.Combine(directory, config.ExportFileName);
        trainer.ExportWeights(part, task.ExportMetadata);
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(part)}[/]{(trainer.Parameters.HasEma ? " (EMA weights)" : "")}, log in {Markup.Escape(Path.Combine(directory, "log.csv"))}");
        return 0;
    }

    private static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or CheckpointException or TrainingDataException
                                    or UnauthorizedAccessException or NotSupportedException)
        {
            Console.Error.WriteLine($"train: {e.Message}");
            return 1;
        }
    }
}
