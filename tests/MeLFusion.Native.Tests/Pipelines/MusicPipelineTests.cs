using MeLFusion.Native.Models;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.IO.Image;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Pipelines;

/// <summary>End-to-end generation on a micro configuration with the real structure, initialised by the engine.</summary>
public sealed class MusicPipelineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-pipe-").FullName;
    private readonly CpuBackend _backend = new();
    private static readonly RgbImage Picture = ImageFile.Read(Path.Combine(Fixture.Directory, "images", "photo.jpg"));

    public MusicPipelineTests()
    {
        ModelInitializer.Write(MicroModel.Config, MicroModel.Tokenizer, _dir, _backend, seed: 7);
    }

    public void Dispose()
    {
        _backend.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private float[] Generate(GenerationRequest request)
    {
        using var model = MelFusionModel.Load(_dir, _backend);
        using var pipeline = new MusicPipeline(model);
        return pipeline.Generate(request).Audio;
    }

    private static GenerationRequest Request(RgbImage? image = null, ulong seed = 1, SynapseMode mode = SynapseMode.Paper) =>
        new("a calm piano piece", image, Seconds: 0.5, Steps: 3, GuidanceScale: 3f, Seed: seed, Synapse: mode, InversionSteps: 3);

    [Fact]
    public void SameSeedSameAudioAndDifferentSeedDifferentAudio()
    {
        var a = Generate(Request());
        Assert.Equal(8000, a.Length);
        Assert.All(a, v => Assert.True(float.IsFinite(v) && Math.Abs(v) <= 1f));
        Assert.Equal(a, Generate(Request()));
        Assert.NotEqual(a, Generate(Request(seed: 2)));
    }

    [Theory]
    [InlineData(SynapseMode.Paper)]
    [InlineData(SynapseMode.CodeCompatible)]
    public void WithAllAlphasZeroTheImageChangesNothing(SynapseMode mode) =>
        Assert.Equal(Generate(Request()), Generate(Request(Picture, mode: mode)));

    [Fact]
    public void NonzeroAlphasLetTheImageSteerTheMusic()
    {
        string path = Path.Combine(_dir, WeightPart.MusicUnet.FileName());
        var writer = new SafetensorsWriter();
        using (var file = SafetensorsFile.Open(path))
            foreach (var e in file.Entries)
                writer.Add(e.Name, e.Shape, e.Name.EndsWith(".alpha", StringComparison.Ordinal) ? [2f] : file.ReadF32(e.Name));
        writer.Write(path);
        var textOnly = Generate(Request());
        var withImage = Generate(Request(Picture));
        Assert.NotEqual(textOnly, withImage);
        Assert.Equal(withImage, Generate(Request(Picture)));
    }

    [Fact]
    public void ReportsProgressPerStepAndStopsWhenCancelled()
    {
        using var model = MelFusionModel.Load(_dir, _backend);
        using var pipeline = new MusicPipeline(model);
        var stages = new List<PipelineProgress>();
        pipeline.Generate(Request(), stages.Add);
        Assert.Equal([0, 1, 2, 3], stages.Where(p => p.Stage == "diffusion").Select(p => p.Step));
        using var cts = new CancellationTokenSource();
        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Generate(Request(), p =>
        {
            if (p is { Stage: "diffusion", Step: 1 }) cts.Cancel();
        }, cts.Token));
    }

    [Fact]
    public void TheCudaKernelsRunTheSamePipelineAsTheCpu()
    {
        var request = Request(Picture) with { Steps = 2 };
        var cpu = Generate(request);
        using var emulated = new MeLFusion.Native.Backends.CudaEmulated.CudaEmulatedBackend();
        using var model = MelFusionModel.Load(_dir, emulated);
        using var pipeline = new MusicPipeline(model);
        var gpu = pipeline.Generate(request).Audio;
        // Same graphs and Philox noise; only summation orders differ between the C# kernels and the CUDA ones.
        Check.Close(cpu, gpu, 2e-4f, 1e-3f, "audio on cuda-emulated vs cpu");
    }

    [Fact]
    public void MissingWeightsDirectoryIsNamed()
    {
        var e = Assert.Throws<FileNotFoundException>(() => MelFusionModel.Load(Path.Combine(_dir, "nope"), _backend));
        Assert.Contains("model.json", e.Message);
    }

    [Fact]
    public void InitialisedWeightsHoldTheSynapseAlphasAtZero()
    {
        using var file = SafetensorsFile.Open(Path.Combine(_dir, WeightPart.MusicUnet.FileName()));
        var alphas = file.Entries.Where(e => e.Name.EndsWith(".alpha", StringComparison.Ordinal)).ToList();
        var unet = MicroModel.Config.MusicUnet;
        Assert.Equal(unet.UpBlockTypes.Count(t => t == UpBlockType.CrossAttnUpBlock2D) * unet.UpLayersPerBlock, alphas.Count);
        Assert.All(alphas, a => Assert.Equal([0f], file.ReadF32(a.Name)));
    }
}
