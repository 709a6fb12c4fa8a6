using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;

namespace MeLFusion.Native.Interop;

/// <summary>
/// The one DllImport resolver of this assembly (.NET allows one per assembly): each project library registers how it is
/// found; other names (system libraries such as libcuda) resolve the default way.
/// </summary>
internal static class NativeLibraries
{
    private static readonly ConcurrentDictionary<string, Func<nint>> Loaders = new(StringComparer.Ordinal);
    private static int _installed;

    /// <summary>Makes LibraryImport(<paramref name="name"/>) use <paramref name="load"/> (returns a handle or throws).</summary>
    public static void Register(string name, Func<nint> load)
    {
        Loaders[name] = load;
        if (Interlocked.Exchange(ref _installed, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        Loaders.TryGetValue(name, out var load) ? load() : 0;
}
