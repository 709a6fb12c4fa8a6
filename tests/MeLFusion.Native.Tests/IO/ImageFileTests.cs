using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.IO;

public sealed class ImageFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-img-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string FixturePath(string name) => Path.Combine(Fixture.Directory, "images", name);

    [Theory]
    [InlineData("rgb.png", 0)]
    [InlineData("gray.png", 0)]
    [InlineData("palette.png", 0)]
    [InlineData("rgba_opaque.png", 0)]
    // Pillow and TurboJPEG both wrap libjpeg-turbo's accurate integer DCT; allow one step for upsampling differences.
    [InlineData("photo.jpg", 1)]
    [InlineData("gray.jpg", 1)]
    [InlineData("progressive.jpg", 1)]
    public void DecodesLikePillow(string name, int tolerance)
    {
        using var fixture = Fixture.Open("images");
        string key = name.Replace('.', '_') + ".rgb";
        var shape = fixture.Shape(key);
        var expected = fixture.I32(key).Select(v => (float)v).ToArray();
        var image = ImageFile.Read(FixturePath(name));
        Assert.Equal((shape[1], shape[0]), (image.Width, image.Height));
        Check.Close(expected, image.Pixels.Select(b => (float)b).ToArray(), tolerance, 0, name);
    }

    [Fact]
    public void PngRoundTripsExactly()
    {
        var pixels = Enumerable.Range(0, 5 * 3 * 3).Select(i => (byte)(i * 37)).ToArray();
        string path = Path.Combine(_dir, "out.png");
        ImageFile.WritePng(path, new RgbImage(5, 3, pixels));
        var back = ImageFile.Read(path);
        Assert.Equal((5, 3), (back.Width, back.Height));
        Assert.Equal(pixels, back.Pixels);
    }

    [Fact]
    public void UnknownAndEmptyFilesAreNamed()
    {
        Assert.Contains("x.gif: neither a PNG nor a JPEG", Assert.Throws<ImageException>(() => ImageFile.Decode("GIF89a"u8, "x.gif")).Message);
        Assert.Contains("empty.png", Assert.Throws<ImageException>(() => ImageFile.Decode([], "empty.png")).Message);
        Assert.Contains("cannot read", Assert.Throws<ImageException>(() => ImageFile.Read(Path.Combine(_dir, "absent.png"))).Message);
    }

    [Theory]
    [InlineData("rgb.png")]
    [InlineData("photo.jpg")]
    [InlineData("progressive.jpg")]
    public void TruncatedAndCorruptedFilesGiveErrors(string name)
    {
        byte[] original = File.ReadAllBytes(FixturePath(name));
        var rng = new Random(99);
        for (int trial = 0; trial < 200; trial++)
        {
            byte[] bytes = (byte[])original.Clone();
            if (trial % 2 == 0) Array.Resize(ref bytes, 3 + rng.Next(bytes.Length - 3));
            else for (int f = 0; f < 1 + rng.Next(8); f++) bytes[3 + rng.Next(bytes.Length - 3)] = (byte)rng.Next(256);
            try
            {
                var image = ImageFile.Decode(bytes, name);
                Assert.Equal((long)image.Width * image.Height * 3, image.Pixels.Length);
            }
            catch (ImageException e)
            {
                Assert.Contains(name, e.Message);
            }
        }
    }

    [Fact]
    public void HugeDeclaredPngDimensionsAreRejectedBeforeAllocating()
    {
        byte[] png = File.ReadAllBytes(FixturePath("rgb.png"));
        // IHDR data starts at byte 16: width, height (big-endian), then the chunk CRC at byte 29.
        WriteBigEndian(png, 16, 60000);
        WriteBigEndian(png, 20, 60000);
        WriteBigEndian(png, 29, Crc32(png.AsSpan(12, 17)));
        var e = Assert.Throws<ImageException>(() => ImageFile.Decode(png, "bomb.png"));
        Assert.Contains("bomb.png", e.Message);
        Assert.Contains("60000x60000", e.Message);
    }

    [Fact]
    public void HugeDeclaredJpegDimensionsAreRejectedBeforeAllocating()
    {
        byte[] jpg = File.ReadAllBytes(FixturePath("photo.jpg"));
        int sof = Enumerable.Range(2, jpg.Length - 3).First(i => jpg[i] == 0xFF && jpg[i + 1] == 0xC0);
        jpg[sof + 5] = 0x75; jpg[sof + 6] = 0x30; // height 30000
        jpg[sof + 7] = 0x75; jpg[sof + 8] = 0x30; // width 30000
        var e = Assert.Throws<ImageException>(() => ImageFile.Decode(jpg, "bomb.jpg"));
        Assert.Contains("30000x30000", e.Message);
    }

    private static void WriteBigEndian(byte[] b, int at, uint v)
    {
        b[at] = (byte)(v >> 24); b[at + 1] = (byte)(v >> 16); b[at + 2] = (byte)(v >> 8); b[at + 3] = (byte)v;
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320 ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
