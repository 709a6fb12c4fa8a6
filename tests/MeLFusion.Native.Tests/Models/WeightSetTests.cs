using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.Models;

public sealed class WeightSetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-ws-").FullName;
    private readonly string _path;

    public WeightSetTests()
    {
        _path = Path.Combine(_dir, "unet.safetensors");
        new SafetensorsWriter()
            .Add("conv_in.weight", [2, 3], [1f, 2f, 3f, 4f, 5f, 6f])
            .Add("conv_in.bias", [2], [0.5f, -0.25f], DType.F16)
            .Write(_path);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public unsafe void F32WeightsAreUsedInPlaceAndHalfWeightsConverted()
    {
        using var backend = new CpuBackend();
        using var weights = new WeightSet(backend, _path);
        using var file = SafetensorsFile.Open(_path);
        var w = weights.Get("conv_in.weight", 2, 3);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], w.AsSpan<float>().ToArray());
        var b = weights.Get("conv_in.bias", 2);
        Assert.Equal(DType.F32, b.DType);
        Assert.Equal([0.5f, -0.25f], b.AsSpan<float>().ToArray());
        Assert.Equal(w.Data, weights.Get("conv_in.weight").Data);
    }

    [Fact]
    public void MissingAndMisshapenTensorsAreNamed()
    {
        using var backend = new CpuBackend();
        using var weights = new WeightSet(backend, _path);
        var missing = Assert.Throws<CheckpointException>(() => weights.Get("conv_out.weight"));
        Assert.Contains("'conv_out.weight'", missing.Message);
        Assert.Contains(_path, missing.Message);
        var wrong = Assert.Throws<CheckpointException>(() => weights.Get("conv_in.weight", 3, 2));
        Assert.Contains("[2, 3]", wrong.Message);
        Assert.Contains("[3, 2]", wrong.Message);
    }
}
