using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>Loss and data settings shared by the model kinds (each reads the ones it needs).</summary>
public sealed record TaskSettings
{
    public ulong Seed { get; init; } = 1;
    /// <summary>Probability that a caption is replaced by the empty prompt (classifier-free guidance's unconditional branch).</summary>
    public float TextDropout { get; init; } = 0.1f;
    /// <summary>γ of Min-SNR-γ loss weighting.</summary>
    public float SnrGamma { get; init; } = 5f;
    /// <summary>Weight of the KL term of the VAE loss (per latent element, against the per-element L1).</summary>
    public float KlWeight { get; init; } = 1e-3f;
    /// <summary>Mel frames per vocoder training segment (a random crop of each clip).</summary>
    public int VocoderSegmentFrames { get; init; } = 32;
    /// <summary>Temperature of the text encoder's contrastive loss.</summary>
    public float ContrastiveTemperature { get; init; } = 0.1f;
    /// <summary>Width of the contrastive projections.</summary>
    public int ContrastiveDim { get; init; } = 64;

    public void Validate()
    {
        if (TextDropout is < 0 or > 1) throw new ArgumentException($"training: text dropout must be in [0, 1], got {TextDropout}");
        if (!(SnrGamma > 0)) throw new ArgumentException($"training: Min-SNR gamma must be positive, got {SnrGamma}");
        if (KlWeight < 0) throw new ArgumentException($"training: KL weight must not be negative, got {KlWeight}");
        if (VocoderSegmentFrames < 1) throw new ArgumentException($"training: vocoder segments need at least 1 frame, got {VocoderSegmentFrames}");
        if (!(ContrastiveTemperature >= 0.02f)) throw new ArgumentException($"training: contrastive temperature must be at least 0.02, got {ContrastiveTemperature}");
        if (ContrastiveDim < 1) throw new ArgumentException($"training: contrastive dim must be positive, got {ContrastiveDim}");
    }
}

/// <summary>
/// The random draws of one micro-batch (noise, timesteps, dropout, crops): Philox streams keyed by the run's seed and
/// the micro-batch index, one disjoint range per purpose. Validation draws use their own key, fixed per batch.
/// </summary>
public readonly struct MicroBatchDraws(ulong seed, long index, bool validation)
{
    private ulong Key => validation ? seed ^ 0x76616C6964617465UL : seed;
    private ulong Offset(int stream) => ((ulong)index << 40) + ((ulong)stream << 34);

    public bool Validation => validation;

    public float[] Normal(int stream, long count)
    {
        var values = new float[count];
        Philox.FillNormal(Key, Offset(stream), values);
        return values;
    }

    public float[] Uniform(int stream, int count)
    {
        var values = new float[count];
        Philox.FillUniform(Key, Offset(stream), values);
        return values;
    }
}

/// <summary>
/// What every model kind shares: the loaded system (frozen parts), the trained part's weight set, the batch source,
/// the text tokenizer and the mel front end. Subclasses build their loss and feed their inputs.
/// </summary>
public abstract class TrainingTaskBase : ITrainingTask
{
    private readonly T5TextEncoder _tokenizer;

    protected TrainingTaskBase(string kind, MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    {
        settings.Validate();
        Kind = kind;
        Model = model;
        Weights = trained;
        Data = data;
        Settings = settings;
        var c = model.Config;
        _tokenizer = new T5TextEncoder(model.TextEncoder, model.Tokenizer, c.TextEncoder, maxLength: c.MaxTextTokens);
        Mel = new MelFrontEnd(c.SampleRate, c.Vocoder.MelChannels, c.Vocoder.HopLength);
    }

    public string Kind { get; }
    public WeightSet Weights { get; }
    public int ValidationBatches => Data.ValidationBatches;
    protected MelFusionModel Model { get; }
    protected MelFusionModelConfig Config => Model.Config;
    protected IBackend Backend => Model.Backend;
    protected IBatchSource Data { get; }
    protected TaskSettings Settings { get; }
    protected MelFrontEnd Mel { get; }
    protected int Batch => Data.BatchSize;

    /// <summary>Mel frames the VAE sees per clip: the centred STFT's frames cropped to a multiple of its downsampling.</summary>
    protected int VaeFrames => Mel.Frames(Data.ClipSamples) / Config.MusicVae.Downsampling * Config.MusicVae.Downsampling;

    public abstract Value BuildLoss(GraphBuilder g);

    public void FeedTraining(ExecutionPlan plan, long index) => Feed(plan, Data.Training(index), new MicroBatchDraws(Settings.Seed, index, false));

    public void FeedValidation(ExecutionPlan plan, int index) => Feed(plan, Data.Validation(index), new MicroBatchDraws(Settings.Seed, index, true));

    protected abstract void Feed(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws);

    /// <summary>Declares the caption inputs "ids" and "mask" [B, L].</summary>
    protected (Value Ids, Value Mask) TextInputs(GraphBuilder g) =>
        (g.Input("ids", DType.I32, Batch, Config.MaxTextTokens), g.Input("mask", DType.I32, Batch, Config.MaxTextTokens));

    /// <summary>
    /// The batch's captions, each replaced by the empty prompt with probability <see cref="TaskSettings.TextDropout"/>
    /// in training (never in validation).
    /// </summary>
    protected string[] CaptionsWithDropout(MicroBatch batch, MicroBatchDraws draws, int stream)
    {
        var keep = draws.Uniform(stream, batch.Captions.Count);
        return batch.Captions.Select((c, i) => draws.Validation || keep[i] >= Settings.TextDropout ? c : "").ToArray();
    }

    /// <summary>Token ids and padding mask [B, <see cref="MelFusionModelConfig.MaxTextTokens"/>] of <paramref name="captions"/>.</summary>
    protected T5Tokens Tokenize(IReadOnlyList<string> captions) => _tokenizer.Tokenize(captions, Config.MaxTextTokens);

    /// <summary>Feeds "ids" and "mask" of the captions after dropout (<see cref="CaptionsWithDropout"/>); returns the tokens fed.</summary>
    protected T5Tokens FeedText(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws, int stream)
    {
        var tokens = Tokenize(CaptionsWithDropout(batch, draws, stream));
        plan.SetInput<int>("ids", tokens.Ids);
        plan.SetInput<int>("mask", tokens.Mask);
        return tokens;
    }

    public virtual void Dispose()
    {
        _tokenizer.Dispose();
        Mel.Dispose();
        (Data as IDisposable)?.Dispose(); // stops a manifest loader's prefetch thread
        Weights.Dispose();
        Model.Dispose();
    }
}
