using System.Diagnostics;

namespace MeLFusion.Native.Training;

/// <summary>How often a run logs, validates and checkpoints (in optimizer steps; 0 = only at the end).</summary>
public sealed record RunCadence(int LogEvery = 10, int ValidateEvery = 100, int CheckpointEvery = 100);

/// <summary>
/// The loop around a <see cref="Trainer"/>: steps until the target, a CSV row and progress report per logged step,
/// validation, periodic checkpoints to <c>checkpoint.safetensors</c> in the run directory, and a final checkpoint
/// when cancelled (Ctrl-C) — always between steps, never with half-accumulated gradients. Whenever the validation
/// loss reaches a new low, the model is also exported as <c>best.safetensors</c> (the reference's "best" checkpoint);
/// a resumed run knows the low from that file's metadata.
/// </summary>
public sealed class TrainingRun(Trainer trainer, string directory, RunCadence cadence, int samplesPerMicroBatch)
{
    public const string CheckpointFile = "checkpoint.safetensors";
    public const string BestFile = "best.safetensors";
    private const string BestStepKey = "training.best_step", BestLossKey = "training.best_validation_loss";

    public string CheckpointPath => Path.Combine(directory, CheckpointFile);
    public string BestPath => Path.Combine(directory, BestFile);

    /// <summary>Trains until <see cref="TrainingOptions.Steps"/> or cancellation; returns the last step's result.</summary>
    public StepResult Run(CancellationToken cancellation = default, Action<StepResult, LogEntry?>? progress = null)
    {
        Directory.CreateDirectory(directory);
        var log = new TrainingLog(directory, trainer.Step);
        var clock = Stopwatch.StartNew();
        long firstStep = trainer.Step;
        float best = BestValidationLoss();
        StepResult last = default;
        while (trainer.Step < trainer.Options.Steps && !cancellation.IsCancellationRequested)
        {
            last = trainer.TrainStep();
            bool end = last.Step == trainer.Options.Steps;
            LogEntry? entry = null;
            if (Due(cadence.LogEvery, last.Step) || end || Due(cadence.ValidateEvery, last.Step))
            {
                float validation = Due(cadence.ValidateEvery, last.Step) || end ? trainer.Validate() : float.NaN;
                double seconds = clock.Elapsed.TotalSeconds;
                double samples = (double)(last.Step - firstStep) * trainer.Options.AccumulationSteps * samplesPerMicroBatch;
                entry = new LogEntry(last.Step, last.Loss, last.GradientNorm, last.LearningRate, validation, seconds, samples / Math.Max(seconds, 1e-9));
                log.Add(entry);
                if (validation < best)
                {
                    best = validation;
                    ExportBest(last.Step, validation);
                }
            }
            if (Due(cadence.CheckpointEvery, last.Step) || end) Checkpoint(log);
            progress?.Invoke(last, entry);
        }
        if (cancellation.IsCancellationRequested && trainer.Step > firstStep) Checkpoint(log);
        return last;
    }

    private void Checkpoint(TrainingLog log)
    {
        trainer.SaveCheckpoint(CheckpointPath, trainer.Task.ExportMetadata);
        log.WriteChart();
    }

    private void ExportBest(long step, float validation)
    {
        var metadata = new Dictionary<string, string>(trainer.Task.ExportMetadata ?? new Dictionary<string, string>())
        {
            [BestStepKey] = step.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [BestLossKey] = validation.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        };
        trainer.ExportWeights(BestPath, metadata);
    }

    /// <summary>The validation loss of the existing best export, +∞ when there is none (or it is unreadable).</summary>
    private float BestValidationLoss()
    {
        if (!File.Exists(BestPath)) return float.PositiveInfinity;
        try
        {
            using var file = IO.Safetensors.SafetensorsFile.Open(BestPath);
            return file.Metadata.TryGetValue(BestLossKey, out var text)
                && float.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float loss)
                ? loss : float.PositiveInfinity;
        }
        catch (IOException)
        {
            return float.PositiveInfinity;
        }
    }

    private static bool Due(int every, long step) => every > 0 && step % every == 0;
}
