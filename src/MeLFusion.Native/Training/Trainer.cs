using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training;

/// <summary>What one optimizer step did.</summary>
public readonly record struct StepResult(long Step, float Loss, float GradientNorm, double LearningRate);

/// <summary>
/// Trains one <see cref="ITrainingTask"/> on its weight set's backend. Three compiled plans, each one arena: the
/// micro-batch plan (forward, loss, backward, and the gradients added into the flat gradient buffer), the optimizer
/// plan (global gradient norm, clipped AdamW over every parameter at once, EMA, zeroed gradients) and the
/// validation plan (forward and loss only). Everything random is a function of the seed and the step, so
/// <see cref="SaveCheckpoint"/> + <see cref="Resume"/> continue a run bit for bit.
/// </summary>
public sealed class Trainer : IDisposable
{
    public const string LossSeedInput = "loss.seed";
    private const string LossOutput = "loss";
    private const string ScheduleInput = "optimizer.schedule";
    private const string GradientSquareSumOutput = "gradient_square_sum";

    private readonly ITrainingTask _task;
    private readonly ParameterStore _store;
    private readonly ExecutionPlan _microBatch;
    private readonly ExecutionPlan _optimizer;
    private readonly ExecutionPlan? _validation;
    private readonly AdamWSchedule _schedule;

    /// <summary>Sets up training of the tensors of <paramref name="task"/>'s model that <paramref name="selection"/> picks.</summary>
    public Trainer(ITrainingTask task, TrainingOptions options, ParameterSelection selection, long startStep = 0)
    {
        options.Validate();
        _task = task;
        Options = options;
        Step = startStep;
        _schedule = new AdamWSchedule(options.CreateSchedule(), options.Beta1, options.Beta2);

        // A first build asks the weight set for every tensor the loss reads; then the selected ones move to the store.
        task.BuildLoss(new GraphBuilder());
        var names = task.Weights.RequestedNames.Where(selection.Includes).ToArray();
        if (names.Length == 0)
            throw new ArgumentException($"training {task.Kind}: the selection ({selection.Description}) matches none of the model's {task.Weights.RequestedNames.Count} tensors");
        _store = new ParameterStore(task.Weights, names, options.EmaDecay is not null);
        try
        {
            _microBatch = CompileMicroBatch();
            _optimizer = CompileOptimizer();
            _validation = task.ValidationBatches > 0 ? CompileValidation() : null;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TrainingOptions Options { get; }
    public ParameterStore Parameters => _store;
    public ITrainingTask Task => _task;

    /// <summary>Optimizer steps taken so far.</summary>
    public long Step { get; private set; }

    /// <summary>Bytes of the three plans' arenas: what training needs beyond weights and optimizer state.</summary>
    public long ArenaBytes => _microBatch.Memory.ArenaBytes + _optimizer.Memory.ArenaBytes + (_validation?.Memory.ArenaBytes ?? 0);

    private ExecutionPlan CompileMicroBatch()
    {
        var g = new GraphBuilder();
        var loss = _task.BuildLoss(g);
        var seed = g.Input(LossSeedInput, DType.F32, loss.Shape.Dims.ToArray());
        // Trained constants are recognised by their memory (a frozen helper model may use the same names).
        var slotAt = _store.Slots.ToDictionary(s => _store.Weight(s.Name).Data, s => s.Name);
        var trained = g.Values.Where(v => v.Kind == ValueKind.Constant && slotAt.ContainsKey(v.Constant!.Value.Data)).ToArray();
        var gradients = Autograd.Gradients(g, loss, seed, trained, Options.GradientCheckpointing);
        foreach (var group in gradients.GroupBy(p => slotAt[p.Key.Constant!.Value.Data], StringComparer.Ordinal))
        {
            var sum = group.Select(p => p.Value).Aggregate(g.Add);
            var buffer = g.Constant(group.Key + ".grad", _store.Gradient(group.Key));
            g.Assign(buffer, new BinaryOp(BinaryOperation.Add), buffer, sum);
        }
        g.Output(LossOutput, loss);
        return g.Compile(_store.Backend);
    }

    private ExecutionPlan CompileOptimizer()
    {
        var o = Options;
        var g = new GraphBuilder();
        var state = g.Constant("optimizer.state", _store.State);
        var gradients = g.Constant("optimizer.gradients", _store.Gradients);
        var schedule = g.Input(ScheduleInput, DType.F32, 3);
        var squareSum = g.SumOfSquares(gradients);
        g.AssignAdamWStep(new AdamWStepOp(o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, o.MaxGradNorm), state, gradients, schedule, squareSum);
        if (o.EmaDecay is { } decay)
            g.AssignEmaUpdate(g.Constant("optimizer.ema", _store.Ema), g.Constant("optimizer.weights", _store.WeightsRow), decay);
        g.AssignFill(gradients, 0f);
        g.Output(GradientSquareSumOutput, squareSum);
        return g.Compile(_store.Backend);
    }

    private ExecutionPlan CompileValidation()
    {
        var g = new GraphBuilder();
        g.Output(LossOutput, _task.BuildLoss(g));
        return g.Compile(_store.Backend);
    }

    /// <summary>
    /// One optimizer step: <see cref="TrainingOptions.AccumulationSteps"/> micro-batches (each loss scaled by
    /// 1/accumulation, so the gradient is the mean), then AdamW at the scheduled learning rate. The loss reported is
    /// the mean over the micro-batches.
    /// </summary>
    public StepResult TrainStep(CancellationToken cancellation = default)
    {
        int accumulation = Options.AccumulationSteps;
        _microBatch.SetInput<float>(LossSeedInput, [1f / accumulation]);
        double loss = 0;
        for (int micro = 0; micro < accumulation; micro++)
        {
            _task.FeedTraining(_microBatch, Step * accumulation + micro);
            _microBatch.Run(cancellation);
            loss += _microBatch.ReadOutput<float>(LossOutput)[0];
        }
        var schedule = _schedule.Values(Step);
        _optimizer.SetInput<float>(ScheduleInput, schedule);
        _optimizer.Run(cancellation);
        float gradientNorm = MathF.Sqrt(_optimizer.ReadOutput<float>(GradientSquareSumOutput)[0]);
        Step++;
        return new StepResult(Step, (float)(loss / accumulation), gradientNorm, schedule[0]);
    }

    /// <summary>The mean loss over the task's validation micro-batches (NaN when it has none).</summary>
    public float Validate(CancellationToken cancellation = default)
    {
        if (_validation is null) return float.NaN;
        double sum = 0;
        for (int i = 0; i < _task.ValidationBatches; i++)
        {
            _task.FeedValidation(_validation, i);
            _validation.Run(cancellation);
            sum += _validation.ReadOutput<float>(LossOutput)[0];
        }
        return (float)(sum / _task.ValidationBatches);
    }

    /// <summary>
    /// Writes the whole run state to <paramref name="path"/> atomically (a temporary file renamed into place, so the
    /// last good checkpoint survives a crash mid-write): every weight of the model under its own name, so the file
    /// also loads as a weights part, plus the AdamW moments, the EMA, the step and the seed.
    /// </summary>
    public void SaveCheckpoint(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var writer = new SafetensorsWriter();
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>()) writer.AddMetadata(key, value);
        TrainingCheckpoint.Describe(writer, this);
        _task.Weights.AddTo(writer);
        int count = checked((int)_store.Count);
        writer.Add(TrainingCheckpoint.FirstMoments, [count], _store.Download(_store.FirstMoments));
        writer.Add(TrainingCheckpoint.SecondMoments, [count], _store.Download(_store.SecondMoments));
        if (_store.HasEma) writer.Add(TrainingCheckpoint.Ema, [count], _store.Download(_store.Ema));
        writer.Write(path);
    }

    /// <summary>
    /// Continues the run saved in <paramref name="checkpoint"/>: <paramref name="task"/>'s weight set must have been
    /// opened on that file; the moments, EMA and step are restored after the checks that the run matches.
    /// </summary>
    public static Trainer Resume(ITrainingTask task, TrainingOptions options, ParameterSelection selection, string checkpoint)
    {
        using var file = SafetensorsFile.Open(checkpoint);
        long step = TrainingCheckpoint.Check(file, task.Kind, options);
        var trainer = new Trainer(task, options, selection, step);
        try
        {
            TrainingCheckpoint.Restore(file, trainer);
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    /// <summary>Writes the trained model (the EMA weights when the run keeps them) as a weights part.</summary>
    public void ExportWeights(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!_store.HasEma)
        {
            _task.Weights.Save(path, metadata);
            return;
        }
        var current = _store.Download(_store.WeightsRow);
        _store.Upload(_store.WeightsRow, _store.Download(_store.Ema), "EMA weights");
        try { _task.Weights.Save(path, metadata); }
        finally { _store.Upload(_store.WeightsRow, current, "weights"); }
    }

    public void Dispose()
    {
        _microBatch?.Dispose();
        _optimizer?.Dispose();
        _validation?.Dispose();
        _store?.Dispose();
    }
}
