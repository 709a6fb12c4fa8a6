using MeLFusion.Native.Interop.Imaging;

namespace MeLFusion.Native.IO.Image;

/// <summary>An image file is corrupt, hostile or of an unsupported kind; the message names the file.</summary>
public sealed class ImageException(string message) : IOException(message);

/// <summary>8-bit RGB pixels, row-major, interleaved (R, G, B).</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    public byte this[int y, int x, int channel] => Pixels[(y * Width + x) * 3 + channel];
}

/// <summary>
/// PNG (libpng) and JPEG (libjpeg-turbo) decoding to RGB, PNG encoding. The format is chosen by the file's magic
/// bytes, not its name; dimensions are checked against <see cref="MaxPixels"/> before any pixel buffer exists.
/// </summary>
public static unsafe class ImageFile
{
    public const long MaxPixels = 64L << 20;

    public static RgbImage Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ImageException($"{path}: cannot read: {e.Message}"); }
        return Decode(bytes, path);
    }

    public static RgbImage Decode(ReadOnlySpan<byte> data, string name)
    {
        if (data.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A])) return DecodePng(data, name);
        if (data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])) return DecodeJpeg(data, name);
        throw new ImageException($"{name}: neither a PNG nor a JPEG file");
    }

    private static void CheckSize(string name, long width, long height)
    {
        if (width <= 0 || height <= 0 || width * height > MaxPixels)
            throw new ImageException($"{name}: {width}x{height} pixels is outside the supported range (1 to {MaxPixels} pixels)");
    }

    private static RgbImage DecodePng(ReadOnlySpan<byte> data, string name)
    {
        var image = new LibPng.PngImage { Version = LibPng.ImageVersion };
        try
        {
            fixed (byte* p = data)
            {
                if (LibPng.BeginReadFromMemory(ref image, p, (nuint)data.Length) == 0)
                    throw new ImageException($"{name}: invalid PNG: {image.MessageText()}");
                CheckSize(name, image.Width, image.Height);
                image.Format = LibPng.FormatRgb;
                var pixels = new byte[image.Width * image.Height * 3];
                fixed (byte* dst = pixels)
                    if (LibPng.FinishRead(ref image, null, dst, (int)image.Width * 3, null) == 0)
                        throw new ImageException($"{name}: corrupt PNG: {image.MessageText()}");
                return new RgbImage((int)image.Width, (int)image.Height, pixels);
            }
        }
        finally
        {
            LibPng.Free(ref image);
        }
    }

    private static RgbImage DecodeJpeg(ReadOnlySpan<byte> data, string name)
    {
        nint handle = TurboJpeg.InitDecompress();
        if (handle == 0) throw new ImageException($"{name}: cannot start the JPEG decoder");
        try
        {
            fixed (byte* p = data)
            {
                if (TurboJpeg.DecompressHeader(handle, p, (nuint)data.Length, out int width, out int height, out _, out _) != 0)
                    throw new ImageException($"{name}: invalid JPEG: {JpegError(handle)}");
                CheckSize(name, width, height);
                var pixels = new byte[(long)width * height * 3];
                fixed (byte* dst = pixels)
                    if (TurboJpeg.Decompress(handle, p, (nuint)data.Length, dst, width, width * 3, height, TurboJpeg.PixelFormatRgb, TurboJpeg.DecodeFlags) != 0)
                        throw new ImageException($"{name}: corrupt JPEG: {JpegError(handle)}");
                return new RgbImage(width, height, pixels);
            }
        }
        finally
        {
            TurboJpeg.Destroy(handle);
        }
    }

    private static string JpegError(nint handle) =>
        System.Runtime.InteropServices.Marshal.PtrToStringUTF8(TurboJpeg.ErrorString(handle)) ?? "unknown error";

    /// <summary>Encodes RGB pixels as PNG and writes them atomically.</summary>
    public static void WritePng(string path, RgbImage image)
    {
        CheckSize(path, image.Width, image.Height);
        if (image.Pixels.Length != (long)image.Width * image.Height * 3)
            throw new ArgumentException($"{path}: {image.Pixels.Length} bytes do not hold {image.Width}x{image.Height} RGB pixels");
        var header = new LibPng.PngImage { Version = LibPng.ImageVersion, Width = (uint)image.Width, Height = (uint)image.Height, Format = LibPng.FormatRgb };
        nuint size = 0;
        fixed (byte* src = image.Pixels)
        {
            if (LibPng.WriteToMemory(ref header, null, ref size, 0, src, image.Width * 3, null) == 0)
                throw new ImageException($"{path}: cannot encode PNG: {header.MessageText()}");
            var encoded = new byte[size];
            fixed (byte* dst = encoded)
                if (LibPng.WriteToMemory(ref header, dst, ref size, 0, src, image.Width * 3, null) == 0)
                    throw new ImageException($"{path}: cannot encode PNG: {header.MessageText()}");
            AtomicFile.Write(path, file => file.Write(encoded, 0, (int)size));
        }
    }
}
