using MeLFusion.Native.Models;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Training;

public class TrainerTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("melfusion-trainer-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>
    /// Linear regression y = x·w* + b* with inputs drawn from Philox by micro-batch index: the smallest task with the
    /// shape of a real one (a weight set, graph inputs fed per index, a validation split, a frozen tensor).
    /// </summary>
    private sealed class RegressionTask(WeightSet weights) : ITrainingTask
    {
        public const int Batch = 4, Width = 16;
        public string Kind => "regression";
        public WeightSet Weights { get; } = weights;
        public int ValidationBatches => 2;

        public Value BuildLoss(GraphBuilder g)
        {
            var x = g.Input("x", DType.F32, Batch, Width);
            var y = g.Input("y", DType.F32, Batch, Width);
            var prediction = g.Add(g.Mul(x, Weights.Constant(g, "toy.weight", Width)), Weights.Constant(g, "toy.bias", Width));
            var shifted = g.Add(prediction, g.Scale(Weights.Constant(g, "toy.frozen", Width), 0f));
            var error = g.Sub(shifted, y);
            return g.Mean(g.Mul(error, error));
        }

        public void FeedTraining(ExecutionPlan plan, long index) => Feed(plan, 1000 + (ulong)index);
        public void FeedValidation(ExecutionPlan plan, int index) => Feed(plan, (ulong)index);

        private static void Feed(ExecutionPlan plan, ulong stream)
        {
            var x = new float[Batch * Width];
            Philox.FillNormal(7, stream * 1024, x);
            var y = new float[x.Length];
            for (int i = 0; i < x.Length; i++) y[i] = x[i] * (0.5f + i % Width * 0.1f) - 0.3f + i % Width % 3 * 0.2f;
            plan.SetInput<float>("x", x);
            plan.SetInput<float>("y", y);
        }

        public void Dispose() => Weights.Dispose();
    }

    private static TrainingOptions Options(long steps) => new()
    {
        Steps = steps, LearningRate = 0.05, WeightDecay = 0.01f, MaxGradNorm = 1f, Seed = 3,
    };

    private static RegressionTask FreshTask(IBackend backend) => new(WeightSet.Initialize(backend, 42));

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdamWStepOp), MemberType = typeof(TestBackends))]
    public void LossFallsOnASyntheticTask(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        using var task = FreshTask(backend);
        using var trainer = new Trainer(task, Options(150), ParameterSelection.All);
        float before = trainer.Validate();
        StepResult last = default;
        while (trainer.Step < 150) last = trainer.TrainStep();
        float after = trainer.Validate();
        Assert.True(after < 0.05f * before, $"validation loss {before} -> {after} (last training loss {last.Loss})");
    }

    [Fact]
    public void ResumingFromACheckpointIsBitIdentical()
    {
        using var backend = TestBackends.Create("cpu");
        var options = Options(8) with { EmaDecay = 0.9f, AccumulationSteps = 2 };
        float[] uninterrupted;
        using (var task = FreshTask(backend))
        using (var trainer = new Trainer(task, options, ParameterSelection.All))
        {
            while (trainer.Step < 8) trainer.TrainStep();
            uninterrupted = [.. trainer.Parameters.Download(trainer.Parameters.State), .. trainer.Parameters.Download(trainer.Parameters.Ema)];
        }

        string checkpoint = Path.Combine(_directory, "run.safetensors");
        using (var task = FreshTask(backend))
        using (var trainer = new Trainer(task, options, ParameterSelection.All))
        {
            while (trainer.Step < 3) trainer.TrainStep();
            trainer.SaveCheckpoint(checkpoint);
        }
        using (var task = new RegressionTask(new WeightSet(backend, checkpoint)))
        using (var trainer = Trainer.Resume(task, options, ParameterSelection.All, checkpoint))
        {
            Assert.Equal(3, trainer.Step);
            while (trainer.Step < 8) trainer.TrainStep();
            float[] resumed = [.. trainer.Parameters.Download(trainer.Parameters.State), .. trainer.Parameters.Download(trainer.Parameters.Ema)];
            Assert.Equal(uninterrupted, resumed);
        }
    }

    [Fact]
    public void FrozenTensorsDoNotChangeAndGetNoGradientMemory()
    {
        using var backend = TestBackends.Create("cpu");
        using var task = FreshTask(backend);
        using var trainer = new Trainer(task, Options(5), ParameterSelection.Prefixes(["toy.bias"]));
        var weightBefore = Read(backend, task.Weights.Get("toy.weight"));
        var biasBefore = Read(backend, task.Weights.Get("toy.bias"));
        while (trainer.Step < 5) trainer.TrainStep();
        Assert.Equal(["toy.bias"], trainer.Parameters.Slots.Select(s => s.Name));
        Assert.Equal(weightBefore, Read(backend, task.Weights.Get("toy.weight")));
        Assert.NotEqual(biasBefore, Read(backend, task.Weights.Get("toy.bias")));
    }

    [Fact]
    public void ResumeRejectsACheckpointOfAnotherRun()
    {
        using var backend = TestBackends.Create("cpu");
        string checkpoint = Path.Combine(_directory, "run.safetensors");
        using (var task = FreshTask(backend))
        using (var trainer = new Trainer(task, Options(2), ParameterSelection.All))
        {
            trainer.TrainStep();
            trainer.SaveCheckpoint(checkpoint);
        }
        using var resumed = new RegressionTask(new WeightSet(backend, checkpoint));
        var ex = Assert.Throws<CheckpointException>(() => Trainer.Resume(resumed, Options(2) with { Seed = 4 }, ParameterSelection.All, checkpoint));
        Assert.Contains("saved with seed 3", ex.Message);
        ex = Assert.Throws<CheckpointException>(() => Trainer.Resume(resumed, Options(2), ParameterSelection.Prefixes(["toy.bias"]), checkpoint));
        Assert.Contains("trained parameters differ", ex.Message);
    }

    [Fact]
    public void ARunWritesLogChartAndCheckpointAndResumesItsLog()
    {
        using var backend = TestBackends.Create("cpu");
        using (var task = FreshTask(backend))
        using (var trainer = new Trainer(task, Options(6), ParameterSelection.All))
            new TrainingRun(trainer, _directory, new RunCadence(LogEvery: 1, ValidateEvery: 3, CheckpointEvery: 3), RegressionTask.Batch).Run();
        var rows = File.ReadAllLines(Path.Combine(_directory, "log.csv"));
        Assert.Equal(TrainingLog.Header, rows[0]);
        Assert.Equal(7, rows.Length);
        Assert.Contains("<polyline", File.ReadAllText(Path.Combine(_directory, "loss.svg")));

        // Resuming from step 6 with a longer run keeps the 6 logged rows and appends the new ones.
        string checkpoint = Path.Combine(_directory, TrainingRun.CheckpointFile);
        using var resumedTask = new RegressionTask(new WeightSet(backend, checkpoint));
        using var resumed = Trainer.Resume(resumedTask, Options(8), ParameterSelection.All, checkpoint);
        new TrainingRun(resumed, _directory, new RunCadence(1, 0, 0), RegressionTask.Batch).Run();
        Assert.Equal(9, File.ReadAllLines(Path.Combine(_directory, "log.csv")).Length);
    }

    /// <summary>best.safetensors holds the weights of the lowest validation loss seen, and says when that was.</summary>
    [Fact]
    public void TheBestValidationLossIsExported()
    {
        using var backend = TestBackends.Create("cpu");
        using var task = FreshTask(backend);
        using var trainer = new Trainer(task, Options(6), ParameterSelection.All);
        var run = new TrainingRun(trainer, _directory, new RunCadence(LogEvery: 1, ValidateEvery: 2, CheckpointEvery: 0), RegressionTask.Batch);
        var validations = new List<(long Step, float Loss, float[] Weights)>();
        run.Run(progress: (result, entry) =>
        {
            if (entry is { ValidationLoss: var v } && float.IsFinite(v))
                validations.Add((result.Step, v, Read(backend, task.Weights.Get("toy.weight"))));
        });
        var best = validations.MinBy(v => v.Loss);
        using var file = MeLFusion.Native.IO.Safetensors.SafetensorsFile.Open(run.BestPath);
        Assert.Equal(best.Step.ToString(System.Globalization.CultureInfo.InvariantCulture), file.Metadata["training.best_step"]);
        Assert.Equal(best.Weights, file.ReadF32("toy.weight"));
    }

    [Fact]
    public void CancellationStopsBetweenStepsWithACheckpoint()
    {
        using var backend = TestBackends.Create("cpu");
        using var task = FreshTask(backend);
        using var trainer = new Trainer(task, Options(100), ParameterSelection.All);
        using var cancel = new CancellationTokenSource();
        var run = new TrainingRun(trainer, _directory, new RunCadence(0, 0, 0), RegressionTask.Batch);
        run.Run(cancel.Token, (result, _) => { if (result.Step == 4) cancel.Cancel(); });
        Assert.Equal(4, trainer.Step);
        using var file = MeLFusion.Native.IO.Safetensors.SafetensorsFile.Open(run.CheckpointPath);
        Assert.Equal("4", file.Metadata["training.step"]);
    }

    private static float[] Read(IBackend backend, Tensor tensor)
    {
        var values = new float[tensor.ElementCount];
        backend.CopyToHost(tensor.Data, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
