using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// Sinusoidal timestep embedding, exactly diffusers' <c>get_timestep_embedding</c>: timesteps [B] -> [B, dim] with
/// frequency k = exp(-ln(max_period)·k / (dim/2 - shift)), halves [sin | cos] of scale·t·frequency (swapped to
/// [cos | sin] by <see cref="FlipSinToCos"/>), and a zero last column when dim is odd. Timesteps may be f32, i32 or i64.
/// </summary>
public sealed class TimestepEmbeddingOp : Op<TimestepEmbeddingOp>
{
    private readonly float[] _frequencies;

    public TimestepEmbeddingOp(int embeddingDim, bool flipSinToCos, float downscaleFreqShift, float scale = 1, int maxPeriod = 10000)
    {
        if (embeddingDim <= 0) throw Invalid("timestep_embedding", $"embedding dim must be positive, got {embeddingDim}");
        if (maxPeriod <= 0) throw Invalid("timestep_embedding", $"max period must be positive, got {maxPeriod}");
        int half = embeddingDim / 2;
        float denominator = half - downscaleFreqShift;
        if (half > 0 && denominator == 0)
            throw Invalid("timestep_embedding", $"dim {embeddingDim} with downscale_freq_shift {downscaleFreqShift} divides by zero");
        EmbeddingDim = embeddingDim;
        FlipSinToCos = flipSinToCos;
        DownscaleFreqShift = downscaleFreqShift;
        Scale = scale;
        MaxPeriod = maxPeriod;
        // Rounded to f32 at the same steps as the torch code (f32 tensors throughout), so arguments match it bit for bit
        // as far as exp's last bit allows.
        float negLogPeriod = (float)-Math.Log(maxPeriod);
        _frequencies = new float[half];
        for (int k = 0; k < half; k++)
            _frequencies[k] = (float)Math.Exp(negLogPeriod * k / denominator);
    }

    public int EmbeddingDim { get; }
    public bool FlipSinToCos { get; }
    public float DownscaleFreqShift { get; }
    public float Scale { get; }
    public int MaxPeriod { get; }
    /// <summary>The dim/2 frequencies, computed once when the op is built.</summary>
    public ReadOnlySpan<float> Frequencies => _frequencies;
    public override string Name => "timestep_embedding";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input, got {inputs.Length}");
        var t = inputs[0];
        if (t.Shape.Rank != 1) throw Invalid(Name, $"timesteps must be 1-D [B], got {t}");
        if (t.DType is not (DType.F32 or DType.I32 or DType.I64)) throw Invalid(Name, $"timesteps must be f32, i32 or i64, got {t}");
        return new TensorDesc(DType.F32, new TensorShape(t.Shape[0], EmbeddingDim));
    }
}

public static class TimestepEmbeddingGraphExtensions
{
    /// <summary>diffusers <c>get_timestep_embedding(timesteps, dim, flip_sin_to_cos, downscale_freq_shift, scale, max_period)</c>.</summary>
    public static Value TimestepEmbedding(this GraphBuilder g, Value timesteps, int embeddingDim, bool flipSinToCos,
        float downscaleFreqShift, float scale = 1, int maxPeriod = 10000) =>
        g.Apply(new TimestepEmbeddingOp(embeddingDim, flipSinToCos, downscaleFreqShift, scale, maxPeriod), timesteps);
}
