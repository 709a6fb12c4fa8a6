using System.Runtime.InteropServices;

namespace MeLFusion.Native.Interop.Imaging;

/// <summary>The TurboJPEG 2.x API of libjpeg-turbo (Debian's libturbojpeg0); failures return -1 with a message.</summary>
internal static unsafe partial class TurboJpeg
{
    public const string Library = "libturbojpeg.so.0";
    public const int PixelFormatRgb = 0;
    /// <summary>Accurate DCT, and stop after 500 progressive scans (a guard against decompression bombs).</summary>
    public const int DecodeFlags = 4096 | 32768;

    [LibraryImport(Library, EntryPoint = "tjInitDecompress")]
    public static partial nint InitDecompress();

    [LibraryImport(Library, EntryPoint = "tjDecompressHeader3")]
    public static partial int DecompressHeader(nint handle, byte* jpeg, nuint jpegSize, out int width, out int height,
        out int subsampling, out int colorspace);

    [LibraryImport(Library, EntryPoint = "tjDecompress2")]
    public static partial int Decompress(nint handle, byte* jpeg, nuint jpegSize, byte* destination, int width, int pitch,
        int height, int pixelFormat, int flags);

    [LibraryImport(Library, EntryPoint = "tjGetErrorStr2")]
    public static partial nint ErrorString(nint handle);

    [LibraryImport(Library, EntryPoint = "tjDestroy")]
    public static partial int Destroy(nint handle);
}
