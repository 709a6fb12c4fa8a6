using MeLFusion.Native.IO.Pickle;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.IO;

public sealed class TorchCheckpointTests : IDisposable
{
    private static readonly string Dir = Path.Combine(Fixture.Directory, "checkpoints");
    private readonly string _tmp = Directory.CreateTempSubdirectory("melfusion-pt-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    [Fact]
    public void ReadsNestedStateDictsWithViewsAndEveryFloatDtype()
    {
        using var fixture = Fixture.Open("checkpoints");
        using var checkpoint = TorchCheckpoint.Open(Path.Combine(Dir, "nested.pt"));
        string[] names = ["model.conv.weight", "model.conv.bias", "model.norm.weight", "model.proj.weight_t", "model.proj.rows", "model.alpha", "model.empty"];
        foreach (string name in names)
        {
            Assert.Equal(fixture.Shape(name), checkpoint.Info(name).Shape);
            Assert.Equal(fixture.F32(name), checkpoint.ReadF32(name));
        }
        Assert.True(checkpoint.Contains("model.norm.num_batches_tracked"));
        Assert.Contains("not floating point", Assert.Throws<PickleException>(() => checkpoint.ReadF32("model.norm.num_batches_tracked")).Message);
        Assert.Contains("'model.missing'", Assert.Throws<PickleException>(() => checkpoint.Info("model.missing")).Message);
    }

    [Fact]
    public void RefusesCodeExecutingGlobals()
    {
        var e = Assert.Throws<PickleException>(() => TorchCheckpoint.Open(Path.Combine(Dir, "evil.pt")));
        Assert.Contains("refuses global 'posix.system'", e.Message);
        Assert.Contains("evil.pt", e.Message);
    }

    [Fact]
    public void NonZipAndCorruptFilesAreReported()
    {
        string notZip = Path.Combine(_tmp, "legacy.bin");
        File.WriteAllBytes(notZip, [0x80, 0x02, 0x8A, 0x0A]);
        Assert.Contains("not a zip-format", Assert.Throws<PickleException>(() => TorchCheckpoint.Open(notZip)).Message);

        byte[] original = File.ReadAllBytes(Path.Combine(Dir, "nested.pt"));
        var rng = new Random(17);
        string path = Path.Combine(_tmp, "fuzz.pt");
        for (int trial = 0; trial < 200; trial++)
        {
            byte[] bytes = (byte[])original.Clone();
            // Corrupt inside the pickle (stored uncompressed near the start of the zip) or anywhere.
            for (int f = 0; f < 3; f++) bytes[trial % 2 == 0 ? 40 + rng.Next(900) : rng.Next(bytes.Length)] = (byte)rng.Next(256);
            File.WriteAllBytes(path, bytes);
            try
            {
                using var checkpoint = TorchCheckpoint.Open(path);
                foreach (string name in checkpoint.Names)
                {
                    try { checkpoint.ReadF32(name); }
                    catch (PickleException) { }
                }
            }
            catch (PickleException e)
            {
                Assert.Contains("fuzz.pt", e.Message);
            }
        }
    }
}
