using MeLFusion.Native.Models;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training;

/// <summary>
/// One kind of model to train (<c>t2m-unet</c>, <c>music-vae</c>, ...): the weight set being trained, the loss graph
/// of one micro-batch and the data that feeds it. Frozen helper models (a VAE that makes latents, the text encoder)
/// belong to the task and are only read.
/// </summary>
public interface ITrainingTask : IDisposable
{
    /// <summary>The command-line name of the model kind, e.g. "t2m-unet".</summary>
    string Kind { get; }

    /// <summary>The model being trained; <see cref="WeightSet.Save"/> writes it as a weights part.</summary>
    WeightSet Weights { get; }

    /// <summary>
    /// Metadata the trained weights file must carry to be usable (e.g. the configuration of a model that is not a
    /// part of the system); written with checkpoints and the exported weights. None by default.
    /// </summary>
    IReadOnlyDictionary<string, string>? ExportMetadata => null;

    /// <summary>Micro-batches in the validation split (0 when there is none).</summary>
    int ValidationBatches { get; }

    /// <summary>
    /// Appends the loss of one micro-batch ([1], a mean over the batch) to <paramref name="g"/>, declaring the task's
    /// own graph inputs. Called more than once (to discover the weights, then for the training and validation plans).
    /// </summary>
    Value BuildLoss(GraphBuilder g);

    /// <summary>
    /// Writes the inputs of training micro-batch <paramref name="index"/> (a counter over the whole run) into
    /// <paramref name="plan"/>. Data order and every random draw are functions of the run's seed and the index, so a
    /// resumed run sees exactly what an uninterrupted one would.
    /// </summary>
    void FeedTraining(ExecutionPlan plan, long index);

    /// <summary>Writes validation micro-batch <paramref name="index"/> (fixed noise, so losses are comparable).</summary>
    void FeedValidation(ExecutionPlan plan, int index);
}
