using System.CommandLine;
using MeLFusion.Native.Backends;
using MeLFusion.Native.Evaluation;
using MeLFusion.Native.Models;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Training.Data;
using Spectre.Console;

namespace MeLFusion.Cli.Commands;

/// <summary>
/// <c>evaluate</c>: the attribute classifier's accuracy on the real test clips, and for generated music (text + image
/// and text only) its agreement with the requested attributes and the Fréchet distance of its embeddings to the real
/// clips; a markdown table on the console and in <c>--out</c>, the same figures as JSON beside it.
/// </summary>
public static class EvaluateCommand
{
    public static Command Create()
    {
        var weights = new Option<DirectoryInfo?>("--weights") { Description = "weights directory of the system (default: the repository's weights/)" };
        var classifier = new Option<FileInfo>("--classifier") { Description = "attribute classifier weights (train attribute-classifier writes attribute_classifier.safetensors)", Required = true };
        var test = new Option<FileInfo>("--test") { Description = "test manifest with attributes (dataset synth's test.jsonl)", Required = true };
        var count = new Option<int>("--count") { Description = "test items to generate music for (at least 2)", DefaultValueFactory = _ => 16 };
        var steps = new Option<int>("--steps") { Description = "diffusion steps per generation", DefaultValueFactory = _ => GenerationRequest.DefaultSteps };
        var seed = new Option<ulong>("--seed") { Description = "item i is generated with seed + i, in both settings", DefaultValueFactory = _ => 0 };
        var seconds = new Option<double>("--seconds") { Description = "length of the generated music and of the real clips compared with it", DefaultValueFactory = _ => 10.24 };
        var guidance = new Option<float>("--guidance") { Description = "classifier-free guidance scale", DefaultValueFactory = _ => 3f };
        var scheduler = new Option<SamplerKind>("--scheduler") { Description = "sampler", DefaultValueFactory = _ => GenerationRequest.DefaultSampler };
        var synapse = new Option<SynapseMode>("--synapse") { Description = "how the image enters: Paper (DDIM inversion) or CodeCompatible", DefaultValueFactory = _ => SynapseMode.Paper };
        var inversionSteps = new Option<int>("--inversion-steps") { Description = "DDIM inversion steps of the image (Paper synapse)", DefaultValueFactory = _ => GenerationRequest.DefaultInversionSteps };
        var device = new Option<string>("--device") { Description = $"one of: {string.Join(", ", BackendFactory.Names)}", DefaultValueFactory = _ => "cpu" };
        var output = new Option<FileInfo>("--out") { Description = "markdown report; the JSON goes beside it (.json)", DefaultValueFactory = _ => new FileInfo("evaluation.md") };
        var command = new Command("evaluate", "Evaluate generation with the attribute classifier: caption and image-only attribute agreement, Fréchet distance")
        {
            weights, classifier, test, count, steps, seed, seconds, guidance, scheduler, synapse, inversionSteps, device, output,
        };
        command.SetAction((parse, cancellation) => Task.FromResult(Run(new AttributeEvaluationOptions
        {
            ModelDirectory = parse.GetValue(weights)?.FullName ?? WeightsLocator.Default(),
            Classifier = parse.GetValue(classifier)!.FullName,
            TestManifest = parse.GetValue(test)!.FullName,
            Count = parse.GetValue(count),
            Steps = parse.GetValue(steps),
            Seed = parse.GetValue(seed),
            Seconds = parse.GetValue(seconds),
            GuidanceScale = parse.GetValue(guidance),
            Sampler = parse.GetValue(scheduler),
            Synapse = parse.GetValue(synapse),
            InversionSteps = parse.GetValue(inversionSteps),
            Command = "./melfusion " + string.Join(" ", parse.Tokens.Select(t => Quote(t.Value))),
        }, parse.GetValue(device)!, parse.GetValue(output)!.FullName, cancellation)));
        return command;
    }

    private static string Quote(string token) => token.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '$') ? $"'{token.Replace("'", "'\\''")}'" : token;

    private static int Run(AttributeEvaluationOptions options, string deviceName, string output, CancellationToken cancellation)
    {
        try
        {
            using var backend = BackendFactory.Create(deviceName);
            EvaluationReport? report = null;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var tasks = new Dictionary<string, ProgressTask>();
                    report = AttributeEvaluation.Run(backend, options, p =>
                    {
                        if (!tasks.TryGetValue(p.Stage, out var task)) tasks[p.Stage] = task = ctx.AddTask(p.Stage, maxValue: Math.Max(1, p.Total));
                        task.Value = p.Done;
                    }, cancellation);
                });
            Console.WriteLine();
            Console.Write(report!.ToMarkdown());
            string json = report.Write(output);
            AnsiConsole.MarkupLine($"wrote {Markup.Escape(output)} and {Markup.Escape(json)}");
            if (!report.ModelTrained)
                AnsiConsole.MarkupLine("[yellow]the system's weights are UNTRAINED: these figures describe noise, not the method[/]");
            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled; nothing written");
            return 130;
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or CheckpointException or TrainingDataException
                                      or MeLFusion.Native.Interop.Cuda.CudaUnavailableException or NotSupportedException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"evaluate: {e.Message}");
            return 1;
        }
    }
}
