using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace MeLFusion.Native.Interop.Emulation;

/// <summary>
/// Bindings to libmelfusion_emu.so (C API in kernels/emu/mf_emu.h), the CPU emulation of the project's CUDA kernels.
/// Signatures are blittable (pointers and integers only). The library is looked up, first match wins:
/// <list type="number">
/// <item>the file named by $MELFUSION_EMU_LIBRARY (nothing else is tried when it is set);</item>
/// <item>next to the application (a published app ships it there);</item>
/// <item>build/emu/ in the working directory or any directory above the application (a source checkout after
/// <c>./melfusion test</c> or <c>cmake -S . -B build/native &amp;&amp; cmake --build build/native</c>).</item>
/// </list>
/// </summary>
internal static unsafe partial class EmulatorNative
{
    public const string LibraryName = "melfusion_emu";
    public const string FileName = "libmelfusion_emu.so";
    public const string PathVariable = "MELFUSION_EMU_LIBRARY";

    private static readonly Lazy<(nint Handle, string Path)> Loaded = new(Load);
    private static readonly ConcurrentDictionary<string, KernelSignature> Signatures = new(StringComparer.Ordinal);

    static EmulatorNative() => NativeLibraries.Register(LibraryName, () => Loaded.Value.Handle);

    /// <summary>The kernel's NUL-terminated UTF-8 name and its parameter sizes, read from the registry once.</summary>
    public sealed record KernelSignature(byte[] Utf8Name, int[] ParameterSizes);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_launch")]
    public static partial int Launch(byte* kernel, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY,
        uint blockZ, uint sharedBytes, void** parameters);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_last_error")]
    private static partial byte* LastErrorUtf8();

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_set_schedule")]
    public static partial int SetSchedule(int mode, ulong seed);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_set_threads")]
    public static partial int SetThreads(int count);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_last_launch_threads")]
    public static partial int LastLaunchThreads();

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_set_stack_size")]
    public static partial int SetStackSize(nuint bytes);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_kernel_count")]
    public static partial int KernelCount();

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_kernel_name")]
    private static partial byte* KernelNameUtf8(int index);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_kernel_module")]
    private static partial byte* KernelModuleUtf8(int index);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_kernel_param_count")]
    private static partial int KernelParamCount(byte* kernel);

    [LibraryImport(LibraryName, EntryPoint = "mf_emu_kernel_param_size")]
    private static partial int KernelParamSize(byte* kernel, int index);

    /// <summary>The calling thread's last error message.</summary>
    public static string LastError() => Marshal.PtrToStringUTF8((nint)LastErrorUtf8()) ?? "";

    /// <summary>The one place where a non-zero status becomes an exception: the kernel's name and the emulator's message.</summary>
    public static void ThrowIfFailed(int status, string kernel)
    {
        if (status != 0) throw new KernelLaunchException(kernel, status, LastError());
    }

    /// <summary>A setting the C# side validated was refused anyway: the library and these bindings disagree.</summary>
    public static void CheckSetting(int status)
    {
        if (status != 0) throw new InvalidOperationException($"{FileName} refused a setting: {LastError()}");
    }

    /// <summary>Registered kernels with the library that registered each (melfusion_emu for kernels/*.cu).</summary>
    public static IReadOnlyList<(string Name, string Module)> Kernels()
    {
        int count = KernelCount();
        var kernels = new List<(string, string)>(count);
        for (int i = 0; i < count; i++)
            kernels.Add((Marshal.PtrToStringUTF8((nint)KernelNameUtf8(i)) ?? "", Marshal.PtrToStringUTF8((nint)KernelModuleUtf8(i)) ?? ""));
        return kernels;
    }

    public static KernelSignature Signature(string kernel) => Signatures.GetOrAdd(kernel, static name =>
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = utf8)
        {
            int count = KernelParamCount(p);
            if (count < 0) ThrowIfFailed(count, name);
            var sizes = new int[count];
            for (int i = 0; i < count; i++)
            {
                sizes[i] = KernelParamSize(p, i);
                if (sizes[i] < 0) ThrowIfFailed(sizes[i], name);
            }
            return new KernelSignature(utf8, sizes);
        }
    });

    /// <summary>
    /// Loads another kernel library (e.g. "melfusion_emu_tests") from the emulator's directory and returns its handle;
    /// its kernels register themselves.
    /// </summary>
    public static nint LoadKernelLibrary(string name)
    {
        string path = Path.Combine(Path.GetDirectoryName(Loaded.Value.Path)!, $"lib{name}.so");
        if (!File.Exists(path))
            throw new DllNotFoundException($"{path} not found; it is built with the emulator ({BuildHint})");
        return NativeLibrary.Load(path);
    }

    private const string BuildHint =
        "build it with ./melfusion test, or cmake -S . -B build/native && cmake --build build/native (needs cmake and clang-14)";

    private static (nint, string) Load()
    {
        // Built with -march=x86-64-v3: on an older CPU the first FMA or AVX2 instruction would kill the process.
        if (!Avx2.IsSupported || !Fma.IsSupported || !Bmi2.IsSupported || !Lzcnt.IsSupported)
            throw new PlatformNotSupportedException($"the CUDA emulator {FileName} needs an x86-64-v3 CPU (AVX2, FMA, F16C, BMI2)");
        var candidates = CandidatePaths().Distinct().ToList();
        foreach (var path in candidates)
            if (File.Exists(path))
                return (NativeLibrary.Load(path), path);
        throw new DllNotFoundException(
            $"the CUDA emulator {FileName} was not found at {string.Join(", ", candidates)}; {BuildHint}; or set {PathVariable} to its path");
    }

    private static IEnumerable<string> CandidatePaths()
    {
        if (Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } explicitPath)
        {
            yield return Path.GetFullPath(explicitPath);
            yield break;
        }
        yield return Path.Combine(AppContext.BaseDirectory, FileName);
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                yield return Path.Combine(dir.FullName, "build", "emu", FileName);
    }
}
