namespace MeLFusion.Native.Benchmarks;

/// <summary>Locates files of the checkout the benchmarks run from (fixtures, weights).</summary>
internal static class Repository
{
    /// <summary>The directory holding MeLFusion.Native.sln, searched upwards from the benchmark binary.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MeLFusion.Native.sln"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (MeLFusion.Native.sln) above " + AppContext.BaseDirectory);
    }
}
