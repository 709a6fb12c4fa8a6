using MeLFusion.Native.IO.Image;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Tests.Training.Data;

public sealed class ImageInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("melfusion-image-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void PixelsBecomeChwFloatsFromMinusOneToOne()
    {
        // 2×2 RGB: 0 → −1, 255 → 1, 51 → −0.6 exactly (51/127.5 = 0.4).
        byte[] pixels = [0, 255, 51, 255, 0, 51, 51, 51, 0, 255, 255, 255];
        string path = Path.Combine(_dir, "tiny.png");
        ImageFile.WritePng(path, new RgbImage(2, 2, pixels));
        var chw = new ImageInput(2).Load(path);
        float[] expected =
        [
            -1, 1, -0.6f, 1,          // R plane, row-major
            1, -1, -0.6f, 1,          // G
            -0.6f, -0.6f, -1, 1,      // B
        ];
        Check.Close(expected, chw, 1e-6f, 0, "chw");
    }

    [Fact]
    public void OtherSizesAreResizedToTheSquareInput()
    {
        var random = new Random(3);
        var pixels = new byte[30 * 20 * 3];
        random.NextBytes(pixels);
        var image = new RgbImage(30, 20, pixels);
        var input = new ImageInput(8);
        var chw = input.Prepare(image);
        Assert.Equal(input.Floats, chw.Length);
        Assert.All(chw, v => Assert.InRange(v, -1f, 1f));
        Check.Close(ImageTransforms.ToSignedUnitChw(ImageTransforms.Resize(image, 8, 8)), chw, 0, 0, "resized");
    }

    [Fact]
    public void ACorruptImageIsAnErrorNamingTheFile()
    {
        string path = Path.Combine(_dir, "broken.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]);
        var e = Assert.Throws<ImageException>(() => new ImageInput(8).Load(path));
        Assert.Contains(path, e.Message);
    }
}
