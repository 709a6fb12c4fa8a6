using System.Security.Cryptography;
using System.Text;
using MeLFusion.Native.Models;
using MeLFusion.Native.Pipelines;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Training.Data;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// Where a diffusion task caches its frozen features on disk, and what names the data they come from (the manifests,
/// or the procedural set's seed): part of the cache version, so that another data set never reads these entries.
/// </summary>
public sealed record FeatureCacheSettings(string Directory, string DataIdentity);

/// <summary>
/// A diffusion task's frozen half run once per example: its VAE latents and text states, kept in a
/// <see cref="FeatureCache"/> whose version hashes everything they depend on (the frozen weights and tokenizer
/// files, clip length, image size, caption length, the data). A dropped caption takes the empty prompt's states,
/// computed once. Features are computed at batch 1, so a cached run matches an uncached one to float rounding, not
/// bit for bit; cached runs are exact among themselves (resume included).
/// </summary>
internal sealed class FrozenFeatures : IDisposable
{
    private const string EmptyPromptKey = "empty-prompt";

    private readonly DiffusionTask _task;
    private readonly FeatureCache _cache;
    private readonly ExecutionPlan _frozen;
    private readonly string[] _names;
    private IReadOnlyDictionary<string, FeatureTensor>? _emptyPrompt;

    public FrozenFeatures(DiffusionTask task, FeatureCacheSettings settings)
    {
        _task = task;
        _frozen = task.CompileFrozen();
        _names = [.. _frozen.OutputNames.Order(StringComparer.Ordinal)];
        Shapes = _names.ToDictionary(n => n, n => _frozen.Output(n).Shape.Dims[1..].ToArray());
        _cache = new FeatureCache(settings.Directory, Version(task, settings.DataIdentity, Shapes));
    }

    /// <summary>Each feature's dims for one example.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; }

    /// <summary>Entries found corrupt and recomputed so far.</summary>
    public IReadOnlyList<string> Warnings => _cache.Warnings;

    /// <summary>
    /// Feeds every feature of <paramref name="batch"/> as the step graph's input of the same name; the text states
    /// of an example whose caption was dropped (<paramref name="captions"/> holds "") are the empty prompt's.
    /// </summary>
    public void Feed(ExecutionPlan plan, MicroBatch batch, IReadOnlyList<string> captions)
    {
        var examples = Enumerable.Range(0, captions.Count).Select(i => Of(batch, i)).ToArray();
        foreach (string name in _names)
        {
            int size = Shapes[name].Aggregate(1, (a, d) => a * d);
            var values = new float[examples.Length * size];
            for (int i = 0; i < examples.Length; i++)
            {
                var source = name == DiffusionTask.TextStates && captions[i].Length == 0 ? EmptyPrompt(batch) : examples[i];
                source[name].Values.CopyTo(values, i * size);
            }
            plan.SetInput<float>(name, values);
        }
    }

    private IReadOnlyDictionary<string, FeatureTensor> Of(MicroBatch batch, int index) =>
        _cache.GetOrCompute(batch.Keys[index], () => Compute(batch.Single(index), batch.Captions[index]));

    private IReadOnlyDictionary<string, FeatureTensor> EmptyPrompt(MicroBatch batch) =>
        _emptyPrompt ??= _cache.GetOrCompute(EmptyPromptKey, () =>
        {
            var states = Compute(batch.Single(0), "")[DiffusionTask.TextStates];
            return new Dictionary<string, FeatureTensor> { [DiffusionTask.TextStates] = states };
        });

    private Dictionary<string, FeatureTensor> Compute(MicroBatch example, string caption)
    {
        _task.RunFrozen(_frozen, example, caption);
        return _names.ToDictionary(n => n, n => new FeatureTensor(Shapes[n], _frozen.ReadOutput<float>(n)));
    }

    /// <summary>SHA-256 of the kind, shapes, data identity and the bytes of every file the frozen half reads.</summary>
    private static string Version(DiffusionTask task, string dataIdentity, IReadOnlyDictionary<string, int[]> shapes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var model = task.ModelDirectory;
        string header = $"{task.Kind}\n{dataIdentity}\nclip samples {task.ClipSamples}\nimage {task.ImageSize}\n"
            + string.Join("\n", shapes.Select(s => $"{s.Key} [{string.Join(", ", s.Value)}]"));
        hash.AppendData(Encoding.UTF8.GetBytes(header));
        foreach (string file in task.FrozenParts.Select(p => p.FileName()).Append(MelFusionModel.TokenizerFile))
        {
            using var stream = File.OpenRead(Path.Combine(model, file));
            hash.AppendData(SHA256.HashData(stream));
        }
        return "frozen-" + Convert.ToHexStringLower(hash.GetHashAndReset(), 0, 16);
    }

    public void Dispose() => _frozen.Dispose();
}
