using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Training;
using MeLFusion.Native.Training.Tasks;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Training;

/// <summary>
/// Every model kind trains on procedural data with a micro configuration of the real structure: a fixed number of
/// seeded steps on cpu must cut the validation loss by a stated factor.
/// </summary>
public sealed class TrainingTaskTests : IDisposable
{
    /// <summary>The micro model with small VAEs and vocoder, short captions and 64-pixel images: every kind trains in a second.</summary>
    private static readonly MelFusionModelConfig Micro = MicroModel.Config with
    {
        MusicVae = MelFusionModelConfig.Tiny.MusicVae with { BaseChannels = 8, Groups = 4 },
        ImageVae = MelFusionModelConfig.Tiny.ImageVae with { BaseChannels = 8, Groups = 4 },
        Vocoder = MelFusionModelConfig.Tiny.Vocoder with { UpsampleInitialChannel = 32 },
        MaxTextTokens = 8,
        ImageSize = 64,
    };

    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-train-").FullName;

    public TrainingTaskTests()
    {
        using var backend = new CpuBackend();
        ModelInitializer.Write(Micro, MicroModel.Tokenizer, _dir, backend, seed: 7);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private TrainingConfig Config(string kind, long steps, double learningRate) => new()
    {
        Kind = kind,
        Model = _dir,
        SyntheticExamples = 8,
        BatchSize = 2,
        ValidationBatches = 2,
        ClipSeconds = 0.64,
        Optimizer = new TrainingOptions { Steps = steps, LearningRate = learningRate, WeightDecay = 0f, MaxGradNorm = 1f, Seed = 5 },
        Loss = new TaskSettings { VocoderSegmentFrames = 16, ContrastiveDim = 16, TextDropout = 0.1f },
    };

    /// <summary>(validation loss before, after) of <paramref name="steps"/> steps.</summary>
    private static (float Before, float After) Train(TrainingConfig config, ParameterSelection? selection = null)
    {
        using var backend = new CpuBackend();
        using var task = config.CreateTask(backend);
        using var trainer = new Trainer(task, config.Optimizer, selection ?? config.Selection);
        float before = trainer.Validate();
        while (trainer.Step < config.Optimizer.Steps) trainer.TrainStep();
        return (before, trainer.Validate());
    }

    /// <summary>The factors are what a few steps reliably achieve on these tasks, with margin; an untrained or
    /// gradient-less run stays near 1.</summary>
    [Theory]
    [InlineData("music-vae", 12, 1e-2, 0.7)]
    [InlineData("image-vae", 12, 3e-3, 0.85)]
    [InlineData("vocoder", 12, 2e-3, 0.9)]
    [InlineData("text-encoder", 12, 3e-3, 0.9)]
    [InlineData("t2i-unet", 12, 3e-3, 0.9)]
    [InlineData("t2m-unet", 12, 3e-3, 0.9)]
    public void EachKindDrivesItsValidationLossDown(string kind, int steps, double learningRate, double factor)
    {
        var (before, after) = Train(Config(kind, steps, learningRate));
        Assert.True(float.IsFinite(before) && after < factor * before, $"{kind}: validation loss {before} -> {after}, wanted below {factor}x");
    }

    [Fact]
    public void TrainOnlyAlphaChangesOnlyTheSynapseAlphas()
    {
        var config = Config("t2m-unet", 3, 0.05) with { TrainOnlyAlpha = true };
        using var backend = new CpuBackend();
        using var task = config.CreateTask(backend);
        using var trainer = new Trainer(task, config.Optimizer, config.Selection);
        var unet = Micro.MusicUnet;
        Assert.Equal(unet.UpBlockTypes.Count(t => t == UpBlockType.CrossAttnUpBlock2D) * unet.UpLayersPerBlock, trainer.Parameters.Slots.Count);
        Assert.All(trainer.Parameters.Slots, s => Assert.EndsWith(".attn2.alpha", s.Name));
        var before = task.Weights.RequestedNames.ToDictionary(n => n, n => Read(backend, task.Weights.Get(n)));
        while (trainer.Step < 3) trainer.TrainStep();
        foreach (var (name, values) in before)
        {
            var now = Read(backend, task.Weights.Get(name));
            if (name.EndsWith(".attn2.alpha", StringComparison.Ordinal)) Assert.NotEqual(values, now);
            else Assert.Equal(values, now);
        }
    }

    [Fact]
    public void AFromScratchMusicUNetStartsItsAlphasWhereAsked()
    {
        var config = Config("t2m-unet", 1, 3e-3) with { FromScratch = true, SynapseAlphaInit = 2f };
        using var backend = new CpuBackend();
        using var task = config.CreateTask(backend);
        using var trainer = new Trainer(task, config.Optimizer, config.Selection);
        var alphas = task.Weights.RequestedNames.Where(n => n.EndsWith(".attn2.alpha", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(alphas);
        Assert.All(alphas, n => Assert.Equal([2f], Read(backend, task.Weights.Get(n))));
        Assert.All(task.Weights.RequestedNames.Where(n => n.EndsWith(".bias", StringComparison.Ordinal)),
            n => Assert.All(Read(backend, task.Weights.Get(n)), v => Assert.Equal(0f, v)));

        Assert.Contains("needs a t2m-unet trained from scratch", Assert.Throws<ArgumentException>(() =>
            (config with { FromScratch = false }).Validate()).Message);
        Assert.Contains("needs a t2m-unet trained from scratch", Assert.Throws<ArgumentException>(() =>
            (config with { Kind = "t2i-unet" }).Validate()).Message);
    }

    /// <summary>
    /// The frozen features cached on disk: the loss matches the uncached graph's to float rounding (batch-1 encoders),
    /// a second run reads every entry instead of recomputing and trains to bit-identical weights, and new frozen
    /// weights start a new cache version.
    /// </summary>
    [Theory]
    [InlineData("t2m-unet")]
    [InlineData("t2i-unet")]
    public void CachedFrozenFeaturesTrainLikeTheFullGraph(string kind)
    {
        string cacheDir = Path.Combine(_dir, "feature-cache");
        (float Before, float[] Weights) Run(string? cache)
        {
            var config = Config(kind, 3, 3e-3) with { FeatureCache = cache };
            using var backend = new CpuBackend();
            using var task = config.CreateTask(backend);
            using var trainer = new Trainer(task, config.Optimizer, config.Selection);
            float before = trainer.Validate();
            while (trainer.Step < 3) trainer.TrainStep();
            return (before, trainer.Parameters.Download(trainer.Parameters.WeightsRow));
        }
        var full = Run(null);
        var computed = Run(cacheDir);
        var version = Assert.Single(Directory.GetDirectories(cacheDir));
        var entries = Directory.GetFiles(version).Select(File.GetLastWriteTimeUtc).ToArray();
        Assert.InRange(entries.Length, 2, 13); // 8 training + 4 validation examples + the empty prompt, as drawn
        var loaded = Run(cacheDir);

        Assert.InRange(computed.Before, full.Before * (1 - 1e-4f), full.Before * (1 + 1e-4f));
        for (int i = 0; i < full.Weights.Length; i++) Assert.InRange(computed.Weights[i] - full.Weights[i], -1e-4f, 1e-4f);
        Assert.Equal(computed.Before, loaded.Before);
        Assert.Equal(computed.Weights, loaded.Weights);
        Assert.Equal(entries, Directory.GetFiles(Assert.Single(Directory.GetDirectories(cacheDir))).Select(File.GetLastWriteTimeUtc));

        using (var backend = new CpuBackend()) ModelInitializer.Write(Micro, MicroModel.Tokenizer, _dir, backend, seed: 8);
        Run(cacheDir);
        Assert.Equal(2, Directory.GetDirectories(cacheDir).Length);
        Assert.Contains("feature cache holds the frozen inputs of the UNets", Assert.Throws<ArgumentException>(() =>
            (Config("vocoder", 1, 1e-3) with { FeatureCache = cacheDir }).Validate()).Message);
    }

    /// <summary>The UNet's resnets and transformers recomputed in the backward pass: identical weights after two
    /// steps, a smaller micro-batch arena.</summary>
    [Fact]
    public void GradientCheckpointingChangesMemoryNotResults()
    {
        // Transformers at every level, as in Tango: the UNet's kept activations then dominate the arena (the lean
        // default keeps so little at its widest level that the frozen encoders set the peak either way).
        string tango = Path.Combine(_dir, "tango-structure");
        var structure = Micro with
        {
            MusicUnet = Micro.MusicUnet with { DownBlockTypes = UNetConfig.TangoMusic.DownBlockTypes, UpBlockTypes = UNetConfig.TangoMusic.UpBlockTypes },
        };
        using (var init = new CpuBackend()) ModelInitializer.Write(structure, MicroModel.Tokenizer, tango, init, seed: 7);
        (float[] Weights, long Arena) Run(bool checkpointing)
        {
            var config = Config("t2m-unet", 2, 3e-3) with
            {
                Model = tango, Optimizer = Config("t2m-unet", 2, 3e-3).Optimizer with { GradientCheckpointing = checkpointing },
            };
            using var backend = new CpuBackend();
            using var task = config.CreateTask(backend);
            using var trainer = new Trainer(task, config.Optimizer, config.Selection);
            while (trainer.Step < 2) trainer.TrainStep();
            return (trainer.Parameters.Download(trainer.Parameters.WeightsRow), trainer.ArenaBytes);
        }
        var kept = Run(false);
        var recomputed = Run(true);
        Assert.Equal(kept.Weights, recomputed.Weights);
        Assert.True(recomputed.Arena < kept.Arena, $"arenas {recomputed.Arena} recomputing vs {kept.Arena} keeping");
    }

    private static float[] Read(MeLFusion.Native.Runtime.IBackend backend, MeLFusion.Native.Runtime.Tensor tensor)
    {
        var values = new float[tensor.ElementCount];
        backend.CopyToHost(tensor.Data, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
