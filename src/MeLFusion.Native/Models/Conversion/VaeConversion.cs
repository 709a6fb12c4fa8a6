namespace MeLFusion.Native.Models.Conversion;

/// <summary>
/// KL autoencoder weights to the engine's LDM naming (spec §4.3): LDM checkpoints (Tango's pytorch_model_vae.bin,
/// AudioLDM's first_stage_model) keep their names; diffusers <c>AutoencoderKL</c> checkpoints are renamed, the
/// decoder's up blocks reversed and the mid attention's Linear projections turned into 1×1 convolutions.
/// </summary>
public static class VaeConversion
{
    /// <summary>A name every KL autoencoder has under both namings, to find it inside a wrapped checkpoint.</summary>
    public const string Marker = "post_quant_conv.weight";

    private static readonly string[] LdmModules = ["encoder.", "decoder.", "quant_conv.", "post_quant_conv."];

    /// <summary>Plans an LDM-named autoencoder under <paramref name="prefix"/>, names unchanged.</summary>
    public static void PlanLdm(PartPlan plan, string prefix)
    {
        foreach (string name in plan.Source.NamesUnder(prefix).ToArray())
        {
            string engineName = name[prefix.Length..];
            if (LdmModules.Any(m => engineName.StartsWith(m, StringComparison.Ordinal))) plan.Copy(name, engineName);
        }
    }

    /// <summary>Plans a diffusers-named autoencoder under <paramref name="prefix"/>, renamed to LDM names.</summary>
    public static void PlanDiffusers(PartPlan plan, string prefix)
    {
        var source = plan.Source;
        var names = source.NamesUnder(prefix).Select(n => n[prefix.Length..]).ToArray();
        int upBlocks = names.Select(n => n.Split('.')).Where(p => p.Length > 2 && p[0] == "decoder" && p[1] == "up_blocks")
            .Select(p => int.TryParse(p[2], out int i) ? i + 1 : 0).DefaultIfEmpty(0).Max();
        foreach (string name in names)
        {
            string? ldm = LdmName(name, upBlocks);
            if (ldm is null) continue;
            var shape = source.Shape(prefix + name);
            if (IsAttentionProjection(ldm) && shape.Length == 2)
                plan.Reshape(prefix + name, ldm, [shape[0], shape[1], 1, 1]);
            else
                plan.Copy(prefix + name, ldm);
        }
    }

    private static bool IsAttentionProjection(string ldmName) =>
        ldmName.EndsWith(".weight", StringComparison.Ordinal) && ldmName.Split('.') is [_, "mid", "attn_1", "q" or "k" or "v" or "proj_out", _];

    /// <summary>
    /// The LDM name of a diffusers VAE tensor, or null for a name outside the diffusers VAE layout.
    /// <paramref name="upBlocks"/> is the number of decoder up blocks n: diffusers' up_blocks.i is LDM's up.(n-1-i).
    /// </summary>
    public static string? LdmName(string diffusersName, int upBlocks)
    {
        var p = diffusersName.Split('.');
        if (p is ["quant_conv" or "post_quant_conv", "weight" or "bias"]) return diffusersName;
        if (p.Length < 3 || p[0] is not ("encoder" or "decoder") || p[^1] is not ("weight" or "bias")) return null;
        bool encoder = p[0] == "encoder";
        string? module = p[1..^1] switch
        {
            ["conv_in"] => "conv_in",
            ["conv_out"] => "conv_out",
            ["conv_norm_out"] => "norm_out",
            ["down_blocks", var i, "resnets", var j, var layer] when encoder && IsIndex(i) && IsIndex(j) =>
                ResnetLayer(layer) is { } l ? $"down.{i}.block.{j}.{l}" : null,
            ["down_blocks", var i, "downsamplers", "0", "conv"] when encoder && IsIndex(i) => $"down.{i}.downsample.conv",
            ["up_blocks", var i, "resnets", var j, var layer] when !encoder && IsIndex(i) && IsIndex(j) =>
                ResnetLayer(layer) is { } l ? $"up.{upBlocks - 1 - int.Parse(i)}.block.{j}.{l}" : null,
            ["up_blocks", var i, "upsamplers", "0", "conv"] when !encoder && IsIndex(i) => $"up.{upBlocks - 1 - int.Parse(i)}.upsample.conv",
            ["mid_block", "resnets", "0" or "1", var layer] => ResnetLayer(layer) is { } l ? $"mid.block_{int.Parse(p[3]) + 1}.{l}" : null,
            ["mid_block", "attentions", "0", .. var layer] => AttentionLayer(layer) is { } l ? $"mid.attn_1.{l}" : null,
            _ => null,
        };
        return module is null ? null : $"{p[0]}.{module}.{p[^1]}";
    }

    private static bool IsIndex(string s) => s.Length is > 0 and < 4 && s.All(char.IsAsciiDigit);

    private static string? ResnetLayer(string layer) => layer switch
    {
        "norm1" or "conv1" or "norm2" or "conv2" => layer,
        "conv_shortcut" => "nin_shortcut",
        _ => null,
    };

    /// <summary>Mid-block attention layers under current (to_q, ..., to_out.0) and older (query, ..., proj_attn) diffusers names.</summary>
    private static string? AttentionLayer(string[] layer) => layer switch
    {
        ["group_norm"] => "norm",
        ["to_q"] or ["query"] => "q",
        ["to_k"] or ["key"] => "k",
        ["to_v"] or ["value"] => "v",
        ["to_out", "0"] or ["proj_attn"] => "proj_out",
        _ => null,
    };
}
