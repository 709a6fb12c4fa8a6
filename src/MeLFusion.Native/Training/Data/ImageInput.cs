using MeLFusion.Native.IO.Image;

namespace MeLFusion.Native.Training.Data;

/// <summary>
/// The image a training example feeds the image VAE: decoded (PNG or JPEG), resized to a square of
/// <see cref="Size"/> pixels (aspect ratio not kept, as the reference's PIL <c>resize((512, 512))</c>), as a
/// [3, Size, Size] float tensor in [-1, 1]. The reference's training code computes 2·x − 1 on 0..255 values without
/// dividing by 255 first (spec §1.4, "likely a bug"); this follows the VAE's documented [-1, 1] input range instead.
/// </summary>
public sealed record ImageInput(int Size)
{
    /// <summary>The reference trains on 512 × 512 images (spec §1.4).</summary>
    public static ImageInput MeLFusion { get; } = new(512);

    public int Floats => 3 * Size * Size;

    public void Validate()
    {
        if (Size <= 0) throw new ArgumentException($"image size {Size} must be positive");
    }

    /// <exception cref="ImageException">The file is missing, corrupt or not PNG/JPEG; the message names it.</exception>
    public float[] Load(string path) => Prepare(ImageFile.Read(path));

    public float[] Prepare(RgbImage image)
    {
        var sized = image.Width == Size && image.Height == Size ? image : ImageTransforms.Resize(image, Size, Size);
        return ImageTransforms.ToSignedUnitChw(sized);
    }
}
