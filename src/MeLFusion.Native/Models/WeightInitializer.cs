using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Models;

/// <summary>
/// Fresh weights by checkpoint name, as PyTorch's default module initialisation would give them: biases zero, the
/// visual-synapse alphas <paramref name="synapseAlpha"/> (MeLFusion's 0 unless a run asks otherwise), normalisation scales one, embeddings standard normal, and every other weight uniform
/// in ±1/√fan_in (fan_in = dim 1 × kernel size), as nn.Linear / nn.Conv*'s kaiming_uniform(a=√5) does. Values come
/// from Philox keyed by the seed and the tensor's name, so a tensor's values do not depend on creation order.
/// </summary>
public sealed class WeightInitializer(ulong seed, float synapseAlpha = 0)
{
    public float[] Create(string name, int[] dims)
    {
        long count = dims.Aggregate(1L, (a, d) => checked(a * d));
        var values = new float[count];
        string leaf = name[(name.LastIndexOf('.') + 1)..];
        ulong stream = seed ^ Fnv1a(name);
        if (leaf == "bias") return values;
        if (leaf == "alpha")
        {
            Array.Fill(values, synapseAlpha);
            return values;
        }
        if (dims.Length == 1)
        {
            Array.Fill(values, 1f); // GroupNorm / LayerNorm / RMSNorm scales
            return values;
        }
        if (name.Contains("shared", StringComparison.Ordinal) || name.Contains("embed_tokens", StringComparison.Ordinal)
            || name.Contains("relative_attention_bias", StringComparison.Ordinal))
        {
            Philox.FillNormal(stream, 0, values);
            return values;
        }
        long fanIn = count / dims[0];
        float bound = 1f / MathF.Sqrt(fanIn);
        Philox.FillUniform(stream, 0, values);
        for (int i = 0; i < values.Length; i++) values[i] = (2 * values[i] - 1) * bound;
        return values;
    }

    private static ulong Fnv1a(string text)
    {
        ulong hash = 14695981039346656037;
        foreach (char c in text)
        {
            hash ^= c;
            hash *= 1099511628211;
        }
        return hash;
    }
}
