namespace MeLFusion.Native.Models.Conversion;

/// <summary>
/// HiFi-GAN generator weights to the engine's names (spec §4.4): conv_pre, ups.{i}, resblocks.{k}.convs{1,2}.{j},
/// conv_post with plain weights. Accepts AudioLDM/Tango's (plain, under "vocoder."), jik876's (weight norm as
/// <c>weight_g</c>/<c>weight_v</c>, under "generator."), torch parametrizations
/// (<c>parametrizations.weight.original0/1</c>) and diffusers <c>SpeechT5HifiGan</c> (<c>upsampler.{i}</c>, plus
/// input-normalisation buffers <c>mean</c>/<c>scale</c> that are dropped).
/// </summary>
public static class HifiGanConversion
{
    /// <summary>A name every generator has unnormalised (biases carry no weight norm), to find its prefix.</summary>
    public const string Marker = "conv_post.bias";

    private const string LegacyMagnitude = ".weight_g", LegacyDirection = ".weight_v";
    private const string Magnitude = ".parametrizations.weight.original0", Direction = ".parametrizations.weight.original1";

    public static void Plan(PartPlan plan, string prefix)
    {
        var source = plan.Source;
        foreach (string name in source.NamesUnder(prefix).ToArray())
        {
            string local = name[prefix.Length..];
            if (local is "mean" or "scale")
                source.Drop(name, "SpeechT5HifiGan input normalisation (normalize_before is false for AudioLDM's vocoder)");
            else if (local.EndsWith(LegacyMagnitude, StringComparison.Ordinal))
                PlanWeightNorm(plan, prefix, local[..^LegacyMagnitude.Length], LegacyMagnitude, LegacyDirection);
            else if (local.EndsWith(Magnitude, StringComparison.Ordinal))
                PlanWeightNorm(plan, prefix, local[..^Magnitude.Length], Magnitude, Direction);
            else if (local.EndsWith(LegacyDirection, StringComparison.Ordinal) || local.EndsWith(Direction, StringComparison.Ordinal))
            {
                string magnitude = local.EndsWith(LegacyDirection, StringComparison.Ordinal)
                    ? local[..^LegacyDirection.Length] + LegacyMagnitude : local[..^Direction.Length] + Magnitude;
                if (!source.Contains(prefix + magnitude))
                    throw new CheckpointException($"{source.Path}: weight-norm direction '{name}' has no magnitude '{prefix}{magnitude}'");
            }
            else
                plan.Copy(name, EngineName(local));
        }
    }

    /// <summary>diffusers' <c>upsampler.{i}</c> is <c>ups.{i}</c>; every other name is already the engine's.</summary>
    private static string EngineName(string local) =>
        local.StartsWith("upsampler.", StringComparison.Ordinal) ? "ups." + local["upsampler.".Length..] : local;

    private static void PlanWeightNorm(PartPlan plan, string prefix, string module, string magnitudeSuffix, string directionSuffix)
    {
        var source = plan.Source;
        string g = prefix + module + magnitudeSuffix, v = prefix + module + directionSuffix;
        if (!source.Contains(v)) throw new CheckpointException($"{source.Path}: weight-norm magnitude '{g}' has no direction '{v}'");
        int[] vShape = source.Shape(v), gShape = source.Shape(g);
        if (vShape.Length == 0 || gShape.Length != vShape.Length || gShape[0] != vShape[0] || gShape.Skip(1).Any(d => d != 1))
            throw new CheckpointException($"{source.Path}: '{g}' [{string.Join(", ", gShape)}] is not a dim-0 weight-norm magnitude of '{v}' [{string.Join(", ", vShape)}]");
        plan.Add(EngineName(module + ".weight"), vShape, () => FoldWeightNorm(source.ReadF32(g), source.ReadF32(v), $"{source.Path}: '{v}'"), g, v);
    }

    /// <summary>
    /// <c>torch.nn.utils.weight_norm(dim=0)</c> folded back into a plain weight: W = g · v / ‖v‖, the norm taken per
    /// index of dim 0 over all other dims (the output channel of a Conv1d, the input channel of a ConvTranspose1d).
    /// <paramref name="magnitude"/> holds one g per dim-0 index; <paramref name="direction"/> is v, row-major.
    /// </summary>
    public static float[] FoldWeightNorm(ReadOnlySpan<float> magnitude, ReadOnlySpan<float> direction, string what)
    {
        int rows = magnitude.Length;
        if (rows == 0 || direction.Length % rows != 0)
            throw new CheckpointException($"{what}: {direction.Length} direction values do not split into {rows} weight-norm rows");
        int columns = direction.Length / rows;
        var weight = new float[direction.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = direction.Slice(r * columns, columns);
            double sumOfSquares = 0;
            foreach (float x in row) sumOfSquares += (double)x * x;
            if (!(sumOfSquares > 0))
                throw new CheckpointException($"{what}: weight-norm row {r} has norm {Math.Sqrt(sumOfSquares)}; its weight is undefined");
            // torch computes v * (g / ||v||).
            float scale = (float)(magnitude[r] / Math.Sqrt(sumOfSquares));
            var output = weight.AsSpan(r * columns, columns);
            for (int c = 0; c < columns; c++) output[c] = row[c] * scale;
        }
        return weight;
    }
}
