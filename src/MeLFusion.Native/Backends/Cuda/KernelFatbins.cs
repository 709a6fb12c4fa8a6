namespace MeLFusion.Native.Backends.Cuda;

/// <summary>
/// Finds the kernel fatbins nvcc builds from kernels/*.cu (one per op family). First match wins:
/// <list type="number">
/// <item>the directory named by $MELFUSION_KERNELS_DIR (nothing else is tried when it is set);</item>
/// <item>next to the application (a published app ships them there);</item>
/// <item>build/kernels/ in the working directory or any directory above the application (a source checkout after
/// <c>./melfusion test</c> or <c>cmake -S . -B build/native &amp;&amp; cmake --build build/native</c>).</item>
/// </list>
/// </summary>
internal static class KernelFatbins
{
    public const string PathVariable = "MELFUSION_KERNELS_DIR";

    /// <summary>The fatbin files of the first directory that holds any, sorted by name.</summary>
    public static string[] Find()
    {
        var candidates = CandidateDirectories().Distinct().ToList();
        foreach (var directory in candidates)
            if (Directory.Exists(directory) && Directory.GetFiles(directory, "*.fatbin") is { Length: > 0 } files)
                return [.. files.Order(StringComparer.Ordinal)];
        throw new FileNotFoundException(
            $"no CUDA kernel fatbins (*.fatbin) in {string.Join(", ", candidates)}; build them with ./melfusion test, or " +
            $"cmake -S . -B build/native && cmake --build build/native (needs nvcc); or set {PathVariable} to their directory");
    }

    private static IEnumerable<string> CandidateDirectories()
    {
        if (Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } explicitDirectory)
        {
            yield return Path.GetFullPath(explicitDirectory);
            yield break;
        }
        yield return AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                yield return Path.Combine(dir.FullName, "build", "kernels");
    }
}
