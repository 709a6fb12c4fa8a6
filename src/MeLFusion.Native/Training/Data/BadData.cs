namespace MeLFusion.Native.Training.Data;

/// <summary>What to do with a manifest line or an example whose files cannot be used.</summary>
public enum BadDataPolicy
{
    /// <summary>Leave it out and record a warning.</summary>
    Skip,

    /// <summary>Throw a <see cref="TrainingDataException"/>.</summary>
    Fail,
}

/// <summary>
/// A manifest line or one of its files cannot be used; the message is "&lt;manifest&gt;:&lt;line&gt;: &lt;problem&gt;"
/// ("&lt;manifest&gt;: &lt;problem&gt;" when the manifest itself is unreadable).
/// </summary>
public sealed class TrainingDataException(string manifest, int line, string problem, Exception? inner = null)
    : IOException(line > 0 ? $"{manifest}:{line}: {problem}" : $"{manifest}: {problem}", inner)
{
    public string Manifest { get; } = manifest;

    /// <summary>1-based line number in <see cref="Manifest"/>; 0 when the problem is the manifest file itself.</summary>
    public int Line { get; } = line;

    public string Problem { get; } = problem;
}

/// <summary>Applies a <see cref="BadDataPolicy"/>: throws, or collects the message as a warning (thread-safe).</summary>
internal sealed class BadDataLog(BadDataPolicy policy)
{
    private readonly List<string> _warnings = [];

    public BadDataPolicy Policy { get; } = policy;

    public IReadOnlyList<string> Warnings
    {
        get
        {
            lock (_warnings) return _warnings.ToArray();
        }
    }

    public void Report(TrainingDataException problem)
    {
        if (Policy == BadDataPolicy.Fail) throw problem;
        lock (_warnings) _warnings.Add(problem.Message);
    }
}
