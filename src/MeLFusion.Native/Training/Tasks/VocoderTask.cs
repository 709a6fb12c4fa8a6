using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// <c>vocoder</c>: HiFi-GAN on random segments of <see cref="TaskSettings.VocoderSegmentFrames"/> mel frames. The
/// generator hears the log-mel of the real segment and is trained with the L1 distance between the log-mels of its
/// output and of the real audio plus the multi-resolution STFT loss (discriminators off, as the issue allows).
/// </summary>
public sealed class VocoderTask(MelFusionModel model, WeightSet trained, IBatchSource data, TaskSettings settings)
    : TrainingTaskBase("vocoder", model, trained, data, settings)
{
    private const int CropStream = 0;

    private int SegmentSamples => Settings.VocoderSegmentFrames * Config.Vocoder.HopLength;

    public override Value BuildLoss(GraphBuilder g)
    {
        var real = g.Input("segment", DType.F32, Batch, SegmentSamples);
        var realMel = g.Slice(Mel.LogMel(g, Backend, real), 2, 0, Settings.VocoderSegmentFrames); // [B, mels, frames]
        var generated = new HifiGan(Config.Vocoder).Build(g, Weights, g.Contiguous(realMel));   // [B, 1, about frames · hop]
        var audio = g.Contiguous(g.Slice(g.Reshape(generated, Batch, -1), 1, 0, SegmentSamples));
        var melLoss = Losses.L1(g, Mel.LogMel(g, Backend, audio), Mel.LogMel(g, Backend, real));
        var resolutions = Losses.DefaultResolutions.Where(r => r.FftSize / 2 < SegmentSamples).ToArray();
        return g.Add(melLoss, Losses.MultiResolutionStft(g, audio, real, resolutions));
    }

    protected override void Feed(ExecutionPlan plan, MicroBatch batch, MicroBatchDraws draws)
    {
        int clip = Data.ClipSamples, segment = SegmentSamples;
        if (segment > clip) throw new ArgumentException($"vocoder: segments of {segment} samples do not fit clips of {clip}");
        var starts = draws.Uniform(CropStream, Batch);
        var segments = new float[Batch * segment];
        for (int b = 0; b < Batch; b++)
        {
            int start = draws.Validation ? 0 : (int)(starts[b] * (clip - segment + 1)) / Config.Vocoder.HopLength * Config.Vocoder.HopLength;
            batch.Audio.AsSpan(b * clip + start, segment).CopyTo(segments.AsSpan(b * segment));
        }
        plan.SetInput<float>("segment", segments);
    }
}
