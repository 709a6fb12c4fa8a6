using System.Diagnostics;

namespace MeLFusion.Native.Training;

/// <summary>How often a run logs, validates and checkpoints (in optimizer steps; 0 = only at the end).</summary>
public sealed record RunCadence(int LogEvery = 10, int ValidateEvery = 100, int CheckpointEvery = 100);

/// <summary>
/// The loop around a <see cref="Trainer"/>: steps until the target, a CSV row and progress report per logged step,
/// validation, periodic checkpoints to <c>checkpoint.safetensors</c> in the run directory, and a final checkpoint
/// when cancelled (Ctrl-C) — always between steps, never with half-accumulated gradients.
/// </summary>
public sealed class TrainingRun(Trainer trainer, string directory, RunCadence cadence, int samplesPerMicroBatch)
{
    public const string CheckpointFile = "checkpoint.safetensors";

    public string CheckpointPath => Path.Combine(directory, CheckpointFile);

    /// <summary>Trains until <see cref="TrainingOptions.Steps"/> or cancellation; returns the last step's result.</summary>
    public StepResult Run(CancellationToken cancellation = default, Action<StepResult, LogEntry?>? progress = null)
    {
        Directory.CreateDirectory(directory);
        var log = new TrainingLog(directory, trainer.Step);
        var clock = Stopwatch.StartNew();
        long firstStep = trainer.Step;
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

    private static bool Due(int every, long step) => every > 0 && step % every == 0;
}
