using System.Text.RegularExpressions;

namespace MeLFusion.Native.Models.Conversion;

/// <summary>
/// diffusers <c>UNet2DConditionModel</c> weights (Tango's under "unet.", Stable Diffusion's bare): the names are the
/// engine's already (spec §4.1). MeLFusion's fork gives every attention a scalar <c>alpha</c> [1, 1]; only the
/// cross-attentions of the up blocks with a visual-synapse input read theirs (spec §1.3), so those are kept in the
/// music UNet and every other alpha is dropped.
/// </summary>
public static partial class UnetConversion
{
    /// <summary>A name only a UNet has, to find the state dict inside a wrapped checkpoint.</summary>
    public const string Marker = "time_embedding.linear_1.bias";

    [GeneratedRegex(@"^up_blocks\.\d+\.attentions\.\d+\.transformer_blocks\.0\.attn2\.alpha$")]
    private static partial Regex SynapseAlpha();

    /// <summary>Plans the UNet under <paramref name="prefix"/>; <paramref name="music"/> keeps the synapse alphas.</summary>
    public static void Plan(PartPlan plan, string prefix, bool music)
    {
        foreach (string name in plan.Source.NamesUnder(prefix).ToArray())
        {
            string engineName = name[prefix.Length..];
            if (!engineName.EndsWith(".alpha", StringComparison.Ordinal))
                plan.Copy(name, engineName);
            else if (music && SynapseAlpha().IsMatch(engineName))
                plan.Copy(name, engineName);
            else
                plan.Source.Drop(name, music
                    ? "MeLFusion alpha of an attention without visual-synapse input (unused)"
                    : "MeLFusion alpha in the image UNet, which receives no visual-synapse input (unused)");
        }
    }
}
