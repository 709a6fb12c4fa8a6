using MeLFusion.Native.IO.Safetensors;

namespace MeLFusion.Native.Tests.Support;

/// <summary>
/// A PyTorch-generated fixture in tests/fixtures (written by tools/reference/*.py). Tensors are named
/// "&lt;case&gt;.&lt;tensor&gt;"; op parameters sit in the metadata as "&lt;case&gt;.&lt;param&gt;".
/// </summary>
public sealed class Fixture : IDisposable
{
    private readonly SafetensorsFile _file;

    private Fixture(SafetensorsFile file) => _file = file;

    public static string RepositoryRoot { get; } = FindRoot();
    public static string Directory => Path.Combine(RepositoryRoot, "tests", "fixtures");

    public static Fixture Open(string name) => new(SafetensorsFile.Open(Path.Combine(Directory, name + ".safetensors")));

    /// <summary>Case names: the prefixes before the first dot, in file order.</summary>
    public IReadOnlyList<string> Cases =>
        _file.Entries.Select(e => e.Name.Split('.')[0]).Distinct().ToArray();

    public float[] F32(string name) => _file.ReadF32(name);
    public int[] I32(string name) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(_file.Bytes(name)).ToArray();
    public long[] I64(string name) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(_file.Bytes(name)).ToArray();
    public int[] Shape(string name) => _file[name].Shape;
    public bool Has(string name) => _file.Contains(name);

    public string Meta(string key) =>
        _file.Metadata.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"{_file.Path}: no metadata '{key}'");
    public int MetaInt(string key) => int.Parse(Meta(key), System.Globalization.CultureInfo.InvariantCulture);
    public float MetaFloat(string key) => float.Parse(Meta(key), System.Globalization.CultureInfo.InvariantCulture);
    public bool MetaBool(string key) => Meta(key) is "True" or "true" or "1";

    public void Dispose() => _file.Dispose();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MeLFusion.Native.sln"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (MeLFusion.Native.sln) above " + AppContext.BaseDirectory);
    }
}
