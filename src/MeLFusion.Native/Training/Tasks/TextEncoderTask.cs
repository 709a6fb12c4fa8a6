using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Text;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// <c>text-encoder</c> from scratch: a CLIP-style contrastive loss between the T5 encoder's masked mean of each caption
/// and the time-averaged log-mel of its clip, each through a linear projection (<c>contrastive.text_projection</c>,
/// <c>contrastive.audio_projection</c>, trained and saved with the encoder, unused at inference). Captions that
/// describe the music end up near each other, which is what the UNets' cross-attention needs from the encoder.
/// </summary>
public sealed class TextEncoderTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    : TrainingTaskBase("text-encoder", model, trained, data, settings)
{
    private readonly T5Encoder _encoder = new(model.Config.TextEncoder);
    private readonly HostConstants _constants = new();

    public override Value BuildLoss(GraphBuilder g)
    {
        var c = Config;
        int dim = Settings.ContrastiveDim, bands = c.Vocoder.MelChannels;
        var (ids, mask) = TextInputs(g);
        var tokenWeights = g.Input("token_weights", DType.F32, Batch, c.MaxTextTokens, 1); // mask / token count
        var states = _encoder.Build(g, Weights, ids, mask);                                 // [B, L, D]
        var pooledText = g.Reshape(g.SumTo(g.Mul(states, tokenWeights), [Batch, 1, c.TextEncoder.ModelDim]), Batch, c.TextEncoder.ModelDim);
        var text = g.Linear(pooledText, Weights.Constant(g, "contrastive.text_projection", dim, c.TextEncoder.ModelDim));

        var audio = g.Input("audio", DType.F32, Batch, Data.ClipSamples);
        var mel = Mel.LogMel(g, Backend, audio);                                           // [B, bands, frames]
        var pooledAudio = g.Reshape(g.Scale(g.SumTo(mel, [Batch, bands, 1]), 1f / mel.Shape[2]), Batch, bands);
        var audioEmbedding = g.Linear(pooledAudio, Weights.Constant(g, "contrastive.audio_projection", dim, bands));

        var identity = _constants.Get(g, Backend, $"identity {Batch}", [Batch, Batch],
            () => Enumerable.Range(0, Batch * Batch).Select(i => i / Batch == i % Batch ? 1f : 0f).ToArray());
        return Losses.Contrastive(g, text, audioEmbedding, identity, Settings.ContrastiveTemperature);
    }

    protected override void Feed(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws)
    {
        // No caption dropout: an empty caption has no partner to be contrasted with.
        var mask = FeedText(plan, batch, new MicroBatchDraws(0, 0, validation: true), 0).Mask;
        var weights = new float[mask.Length];
        for (int b = 0; b < Batch; b++)
        {
            var row = mask.AsSpan(b * Config.MaxTextTokens, Config.MaxTextTokens);
            int count = Math.Max(1, row.Length - row.Count(0));
            for (int i = 0; i < row.Length; i++) weights[b * Config.MaxTextTokens + i] = row[i] != 0 ? 1f / count : 0f;
        }
        plan.SetInput<float>("token_weights", weights);
        plan.SetInput<float>("audio", batch.Audio);
    }

    public override void Dispose()
    {
        _encoder.Dispose();
        _constants.Dispose();
        base.Dispose();
    }
}
