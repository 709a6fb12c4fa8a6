using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// One step of the tiny test UNets (tests/fixtures/unet_music and unet_image: 3 levels of 12/16/16 channels,
/// [2, 4, 8, 4] music and [2, 3, 4, 4] image latents, 5 text tokens): the text-only music UNet, and the MeLFusion
/// step of image UNet + music UNet with the image taps injected. Measures per-node overhead more than arithmetic.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class UNetBenchmark
{
    private CpuBackend _backend = null!;
    private WeightSet _music = null!, _image = null!;
    private ExecutionPlan _textOnly = null!, _synapse = null!;

    [GlobalSetup]
    public void Setup()
    {
        string fixtures = Path.Combine(Repository.Root, "tests", "fixtures");
        string musicPath = Path.Combine(fixtures, "unet_music.safetensors"), imagePath = Path.Combine(fixtures, "unet_image.safetensors");
        _backend = new CpuBackend();
        _music = new WeightSet(_backend, musicPath);
        _image = new WeightSet(_backend, imagePath);
        using var musicFile = SafetensorsFile.Open(musicPath);
        using var imageFile = SafetensorsFile.Open(imagePath);
        var musicModel = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(musicFile.Metadata["config"]));
        var imageModel = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(imageFile.Metadata["config"]));

        _textOnly = Compile(musicFile, null, (g, x) =>
            musicModel.Build(g, _music, x["sample"], x["timestep"], x["context"], x["mask"], prefix: "unet."));
        _synapse = Compile(musicFile, imageFile, (g, x) =>
        {
            var taps = imageModel.BuildWithTaps(g, _image, x["image_sample"], x["timestep"], x["context"]).Taps;
            return musicModel.Build(g, _music, x["sample"], x["timestep"], x["context"], x["mask"], new UNetSynapse(taps), "unet.");
        });
    }

    [Benchmark]
    public void TinyTextOnlyStep() => _textOnly.Run();

    [Benchmark]
    public void TinyImageAndMusicStep() => _synapse.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _textOnly.Dispose();
        _synapse.Dispose();
        _music.Dispose();
        _image.Dispose();
        _backend.Dispose();
    }

    private ExecutionPlan Compile(SafetensorsFile music, SafetensorsFile? image, Func<GraphBuilder, Dictionary<string, Value>, Value> build)
    {
        var g = new GraphBuilder();
        var inputs = new Dictionary<string, Value>
        {
            ["sample"] = g.Input("sample", DType.F32, music["input.sample"].Shape),
            ["timestep"] = g.Input("timestep", DType.F32, music["input.timestep"].Shape),
            ["context"] = g.Input("context", DType.F32, music["input.context"].Shape),
            ["mask"] = g.Input("mask", DType.I32, music["input.mask"].Shape),
        };
        if (image is not null) inputs["image_sample"] = g.Input("image_sample", DType.F32, image["input.sample"].Shape);
        g.Output("out", build(g, inputs));
        var plan = g.Compile(_backend);
        plan.SetInput<float>("sample", music.ReadF32("input.sample"));
        plan.SetInput<float>("timestep", music.ReadF32("input.timestep"));
        plan.SetInput<float>("context", music.ReadF32("input.context"));
        plan.SetInput<byte>("mask", music.Bytes("input.mask"));
        if (image is not null) plan.SetInput<float>("image_sample", image.ReadF32("input.sample"));
        return plan;
    }
}
