namespace MeLFusion.Native.Models.Conversion;

/// <summary>
/// HF T5 weights (spec §4.2) to the engine's T5 encoder: <c>shared.weight</c> and <c>encoder.*</c> keep their names.
/// <c>encoder.embed_tokens.weight</c> is the tied alias of <c>shared.weight</c>: dropped when both are present and
/// equal, renamed to <c>shared.weight</c> when it is the only copy. A full T5's decoder and LM head are dropped.
/// </summary>
public static class T5Conversion
{
    /// <summary>A name only a T5 encoder has, to find it inside a wrapped checkpoint.</summary>
    public const string Marker = "encoder.final_layer_norm.weight";

    private const string Shared = "shared.weight";
    private const string TiedAlias = "encoder.embed_tokens.weight";

    public static void Plan(PartPlan plan, string prefix)
    {
        var source = plan.Source;
        foreach (string name in source.NamesUnder(prefix).ToArray())
        {
            string engineName = name[prefix.Length..];
            if (engineName == TiedAlias)
            {
                if (!source.Contains(prefix + Shared))
                    plan.Copy(name, Shared);
                else if (source.Identical(name, prefix + Shared))
                    source.Drop(name, $"tied alias of {prefix}{Shared}");
                else
                    throw new CheckpointException($"{source.Path}: '{name}' differs from '{prefix}{Shared}', but T5 ties them; which embedding to use is ambiguous");
            }
            else if (engineName == Shared || engineName.StartsWith("encoder.", StringComparison.Ordinal))
                plan.Copy(name, engineName);
            else if (engineName.StartsWith("decoder.", StringComparison.Ordinal) || engineName == "lm_head.weight")
                source.Drop(name, "T5 decoder / LM head (only the encoder is used)");
        }
    }
}
