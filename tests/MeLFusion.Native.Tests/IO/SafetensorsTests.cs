using System.Text;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.IO;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    [Fact]
    public void RoundTripsEveryDtypeAndMetadata()
    {
        string path = PathOf("round.safetensors");
        float[] values = [1f, -2.5f, 3.25f, 65504f, 1e-3f, 0f];
        new SafetensorsWriter()
            .AddMetadata("format", "pt")
            .Add("a.f32", [2, 3], values)
            .Add("a.f16", [6], values, DType.F16)
            .Add("a.bf16", [3, 2], values, DType.BF16)
            .Add("ids", DType.I64, [2], BitConverter.GetBytes(7L).Concat(BitConverter.GetBytes(-1L)).ToArray())
            .Add("empty", [0, 4], ReadOnlySpan<float>.Empty)
            .Write(path);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(5, file.Entries.Count);
        Assert.Equal(values, file.ReadF32("a.f32", 2, 3));
        var half = file.ReadF32("a.f16");
        for (int i = 0; i < values.Length; i++) Assert.Equal(values[i], half[i], Math.Abs(values[i]) / 1024f);
        Assert.Equal([2, 3], file["a.f32"].Shape);
        // bf16 keeps 8 significant bits: exact for these values except 65504 and 1e-3, which round.
        var bf = file.ReadF32("a.bf16");
        for (int i = 0; i < values.Length; i++) Assert.Equal(values[i], bf[i], Math.Abs(values[i]) / 128f);
        Assert.Equal([7L, -1L], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(file.Bytes("ids")).ToArray());
        Assert.Equal(0, file.AsTensor("empty").ElementCount);
    }

    [Fact]
    public unsafe void TensorViewsPointIntoTheMappingWithoutCopying()
    {
        string path = PathOf("view.safetensors");
        new SafetensorsWriter().Add("w", [4], [1f, 2f, 3f, 4f]).Write(path);
        using var file = SafetensorsFile.Open(path);
        var t = file.AsTensor("w");
        fixed (byte* bytes = file.Bytes("w")) Assert.Equal((nint)bytes, t.Data);
        Assert.Equal([1f, 2f, 3f, 4f], t.AsSpan<float>().ToArray());
    }

    [Fact]
    public void WriteReplacesAtomicallyAndLeavesNoTemporaryFile()
    {
        string path = PathOf("atomic.safetensors");
        new SafetensorsWriter().Add("x", [1], [1f]).Write(path);
        new SafetensorsWriter().Add("x", [2], [2f, 3f]).Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal([2f, 3f], file.ReadF32("x"));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void WriterRejectsMismatchedSizesAndDuplicateNames()
    {
        var w = new SafetensorsWriter().Add("x", [2], [1f, 2f]);
        Assert.Contains("'x'", Assert.Throws<ArgumentException>(() => w.Add("x", [1], [1f])).Message);
        Assert.Contains("needs 12 bytes", Assert.Throws<ArgumentException>(() => w.Add("y", DType.F32, [3], new byte[8])).Message);
    }

    public static TheoryData<string, string, string> HostileHeaders => new()
    {
        { "not json", "{\"a\":", "not valid JSON" },
        { "array root", "[1,2]", "not a JSON object" },
        { "unknown dtype", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}", "unsupported dtype 'F128'" },
        { "span past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "outside" },
        { "size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "needs 8 bytes but spans 4" },
        { "negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", "non-negative" },
        { "overflowing shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}", "overflows" },
        { "reversed span", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", "outside" },
        { "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", "overlap" },
        { "duplicate", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "appears twice" },
        { "missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "data_offsets" },
        { "fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4]}}", "not a non-negative integer" },
        { "metadata not strings", "{\"__metadata__\":{\"k\":1}}", "not a string" },
        { "deep nesting", new string('[', 64) + new string(']', 64), "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(HostileHeaders))]
    public void HostileHeadersGiveErrorsNamingFileAndTensor(string label, string header, string expected)
    {
        string path = PathOf(label.Replace(' ', '_') + ".safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. new byte[8]]);
        var e = Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData(0ul)]
    [InlineData(1ul << 40)]
    [InlineData(ulong.MaxValue)]
    public void ImpossibleHeaderLengthsAreRejectedBeforeAllocating(ulong headerLength)
    {
        string path = PathOf("len.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(headerLength), .. "{}"u8]);
        Assert.Contains("header length", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(path)).Message);
    }

    [Fact]
    public void TruncatedAndMissingFilesAreReported()
    {
        string tiny = PathOf("tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(tiny)).Message);
        Assert.Contains("cannot open", Assert.Throws<SafetensorsException>(() => SafetensorsFile.Open(PathOf("absent.safetensors"))).Message);
    }

    [Fact]
    public void MissingTensorAndWrongShapeNameTheTensor()
    {
        string path = PathOf("named.safetensors");
        new SafetensorsWriter().Add("unet.conv_in.weight", [2, 2], [1f, 2f, 3f, 4f]).Write(path);
        using var file = SafetensorsFile.Open(path);
        Assert.Contains("'unet.conv_out.weight'", Assert.Throws<SafetensorsException>(() => file["unet.conv_out.weight"]).Message);
        Assert.Contains("expected [4]", Assert.Throws<SafetensorsException>(() => file.ReadF32("unet.conv_in.weight", 4)).Message);
    }

    [Fact]
    public void RandomCorruptionNeverCrashes()
    {
        string good = PathOf("good.safetensors");
        new SafetensorsWriter().AddMetadata("m", "v").Add("a", [3, 5], new float[15]).Add("b", [7], new float[7], DType.F16).Write(good);
        byte[] original = File.ReadAllBytes(good);
        var rng = new Random(1234);
        string path = PathOf("fuzz.safetensors");
        for (int trial = 0; trial < 300; trial++)
        {
            byte[] bytes = (byte[])original.Clone();
            int flips = 1 + rng.Next(4);
            for (int f = 0; f < flips; f++) bytes[rng.Next(Math.Min(bytes.Length, 8 + 160))] = (byte)rng.Next(256);
            if (rng.Next(4) == 0) Array.Resize(ref bytes, rng.Next(bytes.Length));
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var e in file.Entries)
                    if (e.DType is DType.F32 or DType.F16 or DType.BF16) file.ReadF32(e.Name);
            }
            catch (SafetensorsException)
            {
                // The expected outcome for a corrupted header; anything else fails the test.
            }
        }
    }
}
