using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// Training throughput of the shipped tiny music UNet (weights/model.json, weights/music_unet.safetensors): one
/// <see cref="Trainer.TrainStep"/> of batch 1 (forward, MSE against a v target, backward, global-norm clipping at 1 and
/// AdamW with lr 1e-4 and weight decay 1e-2 over every UNet tensor, the synapse alphas included). The image UNet is
/// left out so the step is about the music UNet: fixed random features of its tap shapes feed the synapse.
/// benchmarks/torch_peer.py's <c>train_step</c> does the same step in PyTorch.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class TrainStepBenchmark
{
    /// <summary>Latent frames of 2.56 s of audio: 256 mel frames at 100 per second over the music VAE's ×4.</summary>
    public const int LatentFrames = 64;
    public const int TextTokens = 16;

    private CpuBackend _backend = null!;
    private SynapseUNetTask _task = null!;
    private Trainer _trainer = null!;

    [GlobalSetup]
    public void Setup()
    {
        string weights = Path.Combine(Repository.Root, "weights");
        var config = MelFusionModelConfig.Read(Path.Combine(weights, MelFusionModelConfig.FileName));
        _backend = new CpuBackend();
        _task = new SynapseUNetTask(config, new WeightSet(_backend, Path.Combine(weights, "music_unet.safetensors")));
        var options = new TrainingOptions { LearningRate = 1e-4, WeightDecay = 1e-2f, MaxGradNorm = 1f };
        _trainer = new Trainer(_task, options, ParameterSelection.All);
    }

    [Benchmark]
    public StepResult TinyMusicUNetStep() => _trainer.TrainStep();

    [GlobalCleanup]
    public void Cleanup()
    {
        _trainer.Dispose();
        _task.Dispose();
        _backend.Dispose();
    }

    /// <summary>
    /// The music UNet on fixed inputs: a noisy latent [1, C, <see cref="LatentFrames"/>, mel bins / 4], t = 500, text
    /// states [1, <see cref="TextTokens"/>, D] with an all-ones mask, and one image feature per up-block attn2 shaped as
    /// the image UNet's tap there ([1, side², channels] for the configured image size). The loss is
    /// <see cref="Losses.WeightedMse"/> with weight 1 against a random v target.
    /// </summary>
    private sealed class SynapseUNetTask : ITrainingTask
    {
        private const ulong Seed = 42;

        private readonly UNet2DConditionModel _unet;
        private readonly int[] _latentDims;
        private readonly (int UpBlock, int Attention, int Tokens, int Channels)[] _features;
        private readonly Dictionary<string, float[]> _inputs = [];
        private readonly int[] _mask = Enumerable.Repeat(1, TextTokens).ToArray();

        public SynapseUNetTask(MelFusionModelConfig config, WeightSet weights)
        {
            Weights = weights;
            _unet = new UNet2DConditionModel(config.MusicUnet);
            _latentDims = [1, config.MusicUnet.InChannels, LatentFrames, config.Vocoder.MelChannels / config.MusicVae.Downsampling];
            var image = config.ImageUnet;
            int imageLatentSide = config.ImageSize / config.ImageVae.Downsampling;
            _features = Enumerable.Range(0, image.Levels)
                .Where(block => image.UpBlockTypes[block] == UpBlockType.CrossAttnUpBlock2D)
                .SelectMany(block => Enumerable.Range(0, image.UpLayersPerBlock).Select(attention =>
                {
                    int side = imageLatentSide >> (image.Levels - 1 - block);
                    return (block, attention, side * side, image.UpChannels(block));
                }))
                .ToArray();

            long stream = 0;
            float[] Normal(long count)
            {
                var values = new float[count];
                Philox.FillNormal(Seed, (ulong)stream++ << 32, values);
                return values;
            }
            long latentCount = _latentDims.Aggregate(1L, (a, d) => a * d);
            _inputs["sample"] = Normal(latentCount);
            _inputs["target"] = Normal(latentCount);
            _inputs["context"] = Normal(TextTokens * config.MusicUnet.CrossAttentionDim);
            foreach (var f in _features) _inputs[FeatureName(f.UpBlock, f.Attention)] = Normal(f.Tokens * f.Channels);
        }

        public string Kind => "music-unet-step";
        public WeightSet Weights { get; }
        public int ValidationBatches => 0;

        private static string FeatureName(int upBlock, int attention) => $"feature.{upBlock}.{attention}";

        public Value BuildLoss(GraphBuilder g)
        {
            var sample = g.Input("sample", DType.F32, _latentDims);
            var target = g.Input("target", DType.F32, _latentDims);
            var context = g.Input("context", DType.F32, 1, TextTokens, _unet.Config.CrossAttentionDim);
            var mask = g.Input("mask", DType.I32, 1, TextTokens);
            var timestep = g.Input("timestep", DType.F32, 1);
            var weight = g.Input("weight", DType.F32, 1);
            var features = _features.ToDictionary(f => (f.UpBlock, f.Attention),
                f => g.Input(FeatureName(f.UpBlock, f.Attention), DType.F32, 1, f.Tokens, f.Channels));
            var prediction = _unet.Build(g, Weights, sample, timestep, context, mask, new UNetSynapse(features, TrainableAlphas: true));
            return Losses.WeightedMse(g, prediction, target, weight);
        }

        public void FeedTraining(ExecutionPlan plan, long index)
        {
            foreach (var (name, values) in _inputs) plan.SetInput<float>(name, values);
            plan.SetInput<int>("mask", _mask);
            plan.SetInput<float>("timestep", [500f]);
            plan.SetInput<float>("weight", [1f]);
        }

        /// <summary>The same fixed inputs (the benchmark has no validation split).</summary>
        public void FeedValidation(ExecutionPlan plan, int index) => FeedTraining(plan, index);

        public void Dispose() => Weights.Dispose();
    }
}
