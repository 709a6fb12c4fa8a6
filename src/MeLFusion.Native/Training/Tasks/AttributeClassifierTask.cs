using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Classifier;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// <c>attribute-classifier</c>: the <see cref="AttributeClassifier"/> on real (rendered) clips, labelled by their
/// manifest attributes (<see cref="AttributeLabels"/>). The loss is the sum over the four heads of each head's
/// softmax cross-entropy, averaged over the batch. Nothing is random: a micro-batch is its clips and their labels, so
/// resumed runs are exact whenever the data order is.
/// </summary>
public sealed class AttributeClassifierTask : ITrainingTask
{
    public const string KindName = "attribute-classifier";
    private const string AudioInput = "audio";

    private readonly AttributeClassifier _classifier;
    private readonly IBatchSource _data;

    public AttributeClassifierTask(AttributeClassifierConfig config, WeightSet trained, IBatchSource data)
    {
        _classifier = new AttributeClassifier(config);
        _data = data;
        Weights = trained;
    }

    public string Kind => KindName;
    public WeightSet Weights { get; }
    public int ValidationBatches => _data.ValidationBatches;
    public IReadOnlyDictionary<string, string> ExportMetadata => AttributeClassifier.Metadata(_classifier.Config);

    /// <summary>The graph input holding a head's one-hot labels [B, classes].</summary>
    public static string LabelInput(AttributeHead head) => "labels." + head.Name;

    public Value BuildLoss(GraphBuilder g)
    {
        int batch = _data.BatchSize;
        var outputs = _classifier.Build(g, Weights, g.Input(AudioInput, DType.F32, batch, _data.ClipSamples));
        Value? total = null;
        for (int h = 0; h < AttributeHeads.All.Count; h++)
        {
            var head = AttributeHeads.All[h];
            var term = Losses.CrossEntropy(g, outputs.Logits[h], g.Input(LabelInput(head), DType.F32, batch, head.Classes.Count));
            total = total is null ? term : g.Add(total, term);
        }
        return total!;
    }

    public void FeedTraining(ExecutionPlan plan, long index) => Feed(plan, _data.Training(index));

    public void FeedValidation(ExecutionPlan plan, int index) => Feed(plan, _data.Validation(index));

    private void Feed(ExecutionPlan plan, MicroBatch batch)
    {
        var examples = batch.Examples ?? throw new InvalidOperationException($"{KindName}: the batches carry no manifest examples to take labels from");
        var labels = examples.Select(AttributeLabels.Of).ToArray();
        plan.SetInput<float>(AudioInput, batch.Audio);
        for (int h = 0; h < AttributeHeads.All.Count; h++)
            plan.SetInput<float>(LabelInput(AttributeHeads.All[h]), OneHot(labels, h, AttributeHeads.All[h].Classes.Count));
    }

    private static float[] OneHot(AttributeLabels[] labels, int head, int classes)
    {
        var values = new float[labels.Length * classes];
        for (int b = 0; b < labels.Length; b++) values[b * classes + labels[b][head]] = 1f;
        return values;
    }

    public void Dispose()
    {
        _classifier.Dispose();
        (_data as IDisposable)?.Dispose();
        Weights.Dispose();
    }
}
