namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>Classifier-free guidance (Ho &amp; Salimans): mixes the unconditional and conditional model outputs.</summary>
public static class ClassifierFreeGuidance
{
    /// <summary>
    /// output = uncond + scale · (cond − uncond), in f32 in that order, as diffusers pipelines compute it. MeLFusion
    /// uses scale 3 on the v outputs of both UNets. <paramref name="output"/> may be either input.
    /// </summary>
    public static void Apply(ReadOnlySpan<float> unconditional, ReadOnlySpan<float> conditional, float scale, Span<float> output)
    {
        NoiseSchedule.CheckLengths("ClassifierFreeGuidance", unconditional.Length, conditional.Length, output.Length);
        for (int i = 0; i < output.Length; i++)
            output[i] = unconditional[i] + scale * (conditional[i] - unconditional[i]);
    }
}
