namespace MeLFusion.Native.Models;

/// <summary>The per-model weight files of a converted model directory.</summary>
public enum WeightPart
{
    TextEncoder,
    MusicUnet,
    ImageUnet,
    MusicVae,
    ImageVae,
    Vocoder,
}

public static class WeightParts
{
    /// <summary>The part's file name in the model directory.</summary>
    public static string FileName(this WeightPart part) => part switch
    {
        WeightPart.TextEncoder => "text_encoder.safetensors",
        WeightPart.MusicUnet => "music_unet.safetensors",
        WeightPart.ImageUnet => "image_unet.safetensors",
        WeightPart.MusicVae => "music_vae.safetensors",
        WeightPart.ImageVae => "image_vae.safetensors",
        WeightPart.Vocoder => "vocoder.safetensors",
        _ => throw new ArgumentOutOfRangeException(nameof(part), part, "unknown weight part"),
    };
}
