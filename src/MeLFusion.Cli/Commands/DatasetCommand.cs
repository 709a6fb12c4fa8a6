using System.CommandLine;
using MeLFusion.Native.Data.Synth;
using Spectre.Console;

namespace MeLFusion.Cli.Commands;

/// <summary>
/// <c>dataset synth</c>: generates a MeLBench-style (image, caption, music) dataset with FluidSynth;
/// <c>dataset preview</c>: prints the captions and attributes a seed would give, without rendering anything.
/// </summary>
public static class DatasetCommand
{
    public static Command Create() => new("dataset", "Make (image, caption, music) training data")
    {
        Synth(),
        Preview(),
    };

    /// <summary>Options shared by both subcommands: what items are drawn from.</summary>
    private sealed class SpaceOptions
    {
        public readonly Option<int> Count = new("--count", "-n") { Description = "number of items", DefaultValueFactory = _ => 100 };
        public readonly Option<int> Seed = new("--seed") { Description = "seed that reproduces the whole dataset bit for bit", DefaultValueFactory = _ => 0 };
        public readonly Option<string[]> Genres = new("--genres")
        {
            Description = $"genres to draw from, comma-separated (default all: {string.Join(", ", Enum.GetValues<Genre>().Select(AttributeNames.Of))})",
            AllowMultipleArgumentsPerToken = true,
        };
        public readonly Option<string[]> Moods = new("--moods")
        {
            Description = $"moods to draw from, comma-separated (default all: {string.Join(", ", Enum.GetValues<Mood>().Select(AttributeNames.Of))})",
            AllowMultipleArgumentsPerToken = true,
        };
        public readonly Option<int> MinTempo = new("--min-tempo") { Description = "lowest tempo in BPM", DefaultValueFactory = _ => MusicAttributes.MinTempo };
        public readonly Option<int> MaxTempo = new("--max-tempo") { Description = "highest tempo in BPM", DefaultValueFactory = _ => MusicAttributes.MaxTempo };

        public IEnumerable<Option> All => [Count, Seed, Genres, Moods, MinTempo, MaxTempo];

        public AttributeSpace Space(ParseResult parse)
        {
            var space = new AttributeSpace { MinTempo = parse.GetValue(MinTempo), MaxTempo = parse.GetValue(MaxTempo) };
            if (Names(parse, Genres) is { } genres) space = space with { Genres = genres.Select(AttributeNames.ParseGenre).Distinct().ToArray() };
            if (Names(parse, Moods) is { } moods) space = space with { Moods = moods.Select(AttributeNames.ParseMood).Distinct().ToArray() };
            space.Validate();
            return space;
        }

        private static string[]? Names(ParseResult parse, Option<string[]> option) =>
            parse.GetValue(option) is { Length: > 0 } values
                ? values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray()
                : null;
    }

    private static Command Synth()
    {
        var space = new SpaceOptions();
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "output directory (manifests, audio/, images/, midi/)", Required = true };
        var trainFraction = new Option<double>("--train-fraction") { Description = "share of items in train.jsonl", DefaultValueFactory = _ => 0.8 };
        var validationFraction = new Option<double>("--validation-fraction") { Description = "share of items in validation.jsonl; test.jsonl gets the rest", DefaultValueFactory = _ => 0.1 };
        var jobs = new Option<int>("--jobs", "-j") { Description = "items (FluidSynth processes) in flight at once", DefaultValueFactory = _ => Environment.ProcessorCount };
        var imageSize = new Option<int>("--image-size") { Description = "image width and height in pixels", DefaultValueFactory = _ => SceneRenderer.DefaultSize };
        var overwrite = new Option<bool>("--overwrite") { Description = "replace the dataset in a non-empty output directory" };
        var soundFont = new Option<FileInfo?>("--soundfont") { Description = $"General MIDI soundfont (default {FluidSynthRenderer.DefaultSoundFont})" };
        var fluidSynth = new Option<FileInfo?>("--fluidsynth") { Description = "fluidsynth executable (default: found on PATH)" };
        var command = new Command("synth", "Compose, render (FluidSynth) and caption a synthetic MeLBench-style dataset")
        {
            output, trainFraction, validationFraction, jobs, imageSize, overwrite, soundFont, fluidSynth,
        };
        foreach (var option in space.All) command.Options.Add(option);
        command.SetAction(parse => Guard(() =>
        {
            var settings = new SynthSettings
            {
                OutputDirectory = parse.GetValue(output)!.FullName,
                Count = parse.GetValue(space.Count),
                Seed = parse.GetValue(space.Seed),
                TrainFraction = parse.GetValue(trainFraction),
                ValidationFraction = parse.GetValue(validationFraction),
                Space = space.Space(parse),
                Overwrite = parse.GetValue(overwrite),
                MaxParallelism = parse.GetValue(jobs),
                ImageSize = parse.GetValue(imageSize),
            };
            settings.Validate();
            var renderer = FluidSynthRenderer.Locate(parse.GetValue(fluidSynth)?.FullName, parse.GetValue(soundFont)?.FullName);
            var synthesizer = new DatasetSynthesizer(settings, renderer);
            SynthSummary? summary = null;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(context =>
                {
                    var task = context.AddTask($"{settings.Count} items", maxValue: settings.Count);
                    summary = synthesizer.Run(() => task.Increment(1));
                });
            AnsiConsole.MarkupLine($"wrote {summary!.Train} train, {summary.Validation} validation, {summary.Test} test items to " +
                                   $"[bold]{Markup.Escape(settings.OutputDirectory)}[/] in {summary.Elapsed.TotalSeconds:0.0} s");
            PrintItems(summary.Items.Take(5));
        }));
        return command;
    }

    private static Command Preview()
    {
        var space = new SpaceOptions();
        var command = new Command("preview", "Print the attributes and captions a seed gives, without rendering audio");
        foreach (var option in space.All) command.Options.Add(option);
        command.SetAction(parse => Guard(() =>
        {
            var attributes = space.Space(parse);
            int count = parse.GetValue(space.Count), seed = parse.GetValue(space.Seed);
            if (count < 1) throw new ArgumentException($"item count must be at least 1 (got {count})");
            var items = Enumerable.Range(0, count).Select(i => DatasetSynthesizer.Prepare(seed, i, attributes, SceneRenderer.MinSize, "preview"));
            PrintItems(items);
        }));
        return command;
    }

    /// <summary>One block per item: its attributes on one line, its caption below.</summary>
    private static void PrintItems(IEnumerable<SynthItem> items)
    {
        foreach (var item in items)
        {
            var a = item.Attributes;
            AnsiConsole.MarkupLine(
                $"[bold]{item.Id}[/] {AttributeNames.Of(a.Genre)} | [yellow]{AttributeNames.Of(a.Mood)}[/] | [yellow]{a.TempoBpm} BPM ({AttributeNames.Of(a.TempoFeel)})[/] | " +
                $"{Markup.Escape(a.KeyName)} {a.BeatsPerBar}/4 | {string.Join("+", AttributeNames.Of(a.Texture))} | " +
                Markup.Escape(string.Join(" ", item.Score.Progression.Select(c => c.Symbol(a.Tonic, a.Mode)))));
            AnsiConsole.MarkupLine($"       [grey]{Markup.Escape(item.Caption)}[/]");
        }
    }

    /// <summary>Runs an action, turning the errors a user can fix into one line on stderr and exit code 1.</summary>
    private static int Guard(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or IOException or SynthToolMissingException or TimeoutException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
