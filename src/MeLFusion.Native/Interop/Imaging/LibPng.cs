using System.Runtime.InteropServices;

namespace MeLFusion.Native.Interop.Imaging;

/// <summary>libpng 1.6's "simplified API" (png_image): errors come back as status codes, never longjmp into C#.</summary>
internal static unsafe partial class LibPng
{
    public const string Library = "libpng16.so.16";
    public const uint ImageVersion = 1;
    public const uint FormatRgb = 2;

    [StructLayout(LayoutKind.Sequential)]
    public struct PngImage
    {
        public nint Opaque;
        public uint Version;
        public uint Width;
        public uint Height;
        public uint Format;
        public uint Flags;
        public uint ColormapEntries;
        public uint WarningOrError;
        public fixed byte Message[64];

        public readonly bool Failed => (WarningOrError & 3) > 1;

        public readonly string MessageText()
        {
            fixed (byte* m = Message) return Marshal.PtrToStringUTF8((nint)m) ?? "";
        }
    }

    [LibraryImport(Library, EntryPoint = "png_image_begin_read_from_memory")]
    public static partial int BeginReadFromMemory(ref PngImage image, void* memory, nuint size);

    [LibraryImport(Library, EntryPoint = "png_image_finish_read")]
    public static partial int FinishRead(ref PngImage image, void* background, void* buffer, int rowStride, void* colormap);

    [LibraryImport(Library, EntryPoint = "png_image_write_to_memory")]
    public static partial int WriteToMemory(ref PngImage image, void* memory, ref nuint memoryBytes, int convertTo8Bit,
        void* buffer, int rowStride, void* colormap);

    [LibraryImport(Library, EntryPoint = "png_image_free")]
    public static partial void Free(ref PngImage image);
}
