using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models.Conversion;

/// <summary>One tensor of a converted part: its engine name and shape, and how to compute its f32 values.</summary>
public sealed record PlannedTensor(string Name, int[] Shape, Func<float[]> Values);

/// <summary>
/// The tensors one output file will hold, under the engine's names. Values are computed only when the file is
/// written, one tensor at a time, so planning a conversion reads no tensor data.
/// </summary>
public sealed class PartPlan(WeightPart part, TensorSource source)
{
    private readonly List<PlannedTensor> _tensors = [];
    private readonly Dictionary<string, string> _origins = new(StringComparer.Ordinal);

    public WeightPart Part { get; } = part;
    public TensorSource Source { get; } = source;
    public IReadOnlyList<PlannedTensor> Tensors => _tensors;

    /// <summary>Takes source tensor <paramref name="sourceName"/> unchanged as <paramref name="name"/>.</summary>
    public void Copy(string sourceName, string name) =>
        Add(name, Source.Shape(sourceName), () => Source.ReadF32(sourceName), sourceName);

    /// <summary>Takes source tensor <paramref name="sourceName"/> as <paramref name="name"/> with a new shape of the same size.</summary>
    public void Reshape(string sourceName, string name, int[] shape)
    {
        long from = Elements(Source.Shape(sourceName)), to = Elements(shape);
        if (from != to)
            throw new CheckpointException($"{Source.Path}: '{sourceName}' [{string.Join(", ", Source.Shape(sourceName))}] cannot become '{name}' [{string.Join(", ", shape)}]");
        Add(name, shape, () => Source.ReadF32(sourceName), sourceName);
    }

    /// <summary>Adds <paramref name="name"/> computed from the source tensors <paramref name="sourceNames"/>, which it claims.</summary>
    public void Add(string name, int[] shape, Func<float[]> values, params string[] sourceNames)
    {
        string origin = string.Join(" + ", sourceNames);
        if (!_origins.TryAdd(name, origin))
            throw new CheckpointException($"{Source.Path}: both '{_origins[name]}' and '{origin}' convert to '{name}'");
        foreach (string s in sourceNames) Source.Claim(s);
        _tensors.Add(new PlannedTensor(name, shape, values));
    }

    /// <summary>Computes every tensor and writes them, stored as <paramref name="dtype"/>, to a safetensors file.</summary>
    public void Write(string path, DType dtype)
    {
        var writer = new SafetensorsWriter().AddMetadata("format", "pt").AddMetadata("source", System.IO.Path.GetFileName(Source.Path));
        foreach (var t in _tensors)
        {
            var values = t.Values();
            if (values.Length != Elements(t.Shape))
                throw new CheckpointException($"{Source.Path}: '{t.Name}' has {values.Length} values, its shape [{string.Join(", ", t.Shape)}] needs {Elements(t.Shape)}");
            writer.Add(t.Name, t.Shape, values, dtype);
        }
        writer.Write(path);
    }

    private static long Elements(int[] shape) => shape.Aggregate(1L, (a, d) => a * d);
}
