using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// |STFT| of a batch of waveforms with <c>torch.stft</c> semantics: center=True with reflect padding of nFft/2, a
/// periodic Hann window of <see cref="WinLength"/> samples zero-padded (centred) to <see cref="NFft"/>, one-sided.
/// Input [B, T] f32, output [B, nFft/2+1, 1 + T/hop] f32.
/// </summary>
public sealed class StftMagnitudeOp : Op<StftMagnitudeOp>, IDifferentiable
{
    public StftMagnitudeOp(int nFft, int hop, int winLength)
    {
        if (nFft < 2 || (nFft & (nFft - 1)) != 0)
            throw Invalid("stft_magnitude", $"nFft must be a power of two >= 2, got {nFft}");
        if (hop < 1) throw Invalid("stft_magnitude", $"hop must be >= 1, got {hop}");
        if (winLength < 1 || winLength > nFft)
            throw Invalid("stft_magnitude", $"winLength must be in [1, nFft={nFft}], got {winLength}");
        NFft = nFft;
        Hop = hop;
        WinLength = winLength;
    }

    public int NFft { get; }
    public int Hop { get; }
    public int WinLength { get; }
    /// <summary>Frequency bins of the one-sided spectrum.</summary>
    public int Bins => NFft / 2 + 1;

    public override string Name => "stft_magnitude";

    public int FrameCount(int samples) => 1 + samples / Hop;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input (wave [B, T]), got {inputs.Length}");
        var wave = inputs[0];
        if (wave.DType != DType.F32) throw Invalid(Name, $"wave must be F32, got {wave}");
        if (wave.Shape.Rank != 2) throw Invalid(Name, $"wave must be [B, T], got {wave.Shape}");
        int samples = wave.Shape[1];
        // Reflect padding mirrors nFft/2 samples without repeating the edge, so it needs more than that many.
        if (samples <= NFft / 2)
            throw Invalid(Name, $"wave {wave.Shape} is too short for reflect padding of nFft/2 = {NFft / 2}; need T > {NFft / 2}");
        return new TensorDesc(DType.F32, new TensorShape(wave.Shape[0], Bins, FrameCount(samples)));
    }

    public void Backward(GradientContext context) =>
        context.AddGradient(0, context.Graph.Apply(new StftMagnitudeGradientOp(this), context.Input(0), context.OutputGradient));
}

/// <summary>
/// The gradient of <see cref="StftMagnitudeOp"/>: wave [B, T] and d|X| [B, F, frames] give dwave [B, T]. Each frame's
/// spectrum X is recomputed; bin k contributes d|X[k]| · X[k] / |X[k]| (nothing where |X[k]| = 0, as torch's abs), the
/// one-sided bins are taken back through the real DFT (an inverse FFT of their Hermitian extension) and the window to
/// the frame's samples, and each wave sample sums, in a fixed order, the frames that read it directly and through the
/// reflect padding. Scratch: the frame gradients, [B, frames, nFft] f32.
/// </summary>
public sealed class StftMagnitudeGradientOp : Op<StftMagnitudeGradientOp>
{
    public StftMagnitudeGradientOp(StftMagnitudeOp forward) => Forward = forward;

    /// <summary>The differentiated op: its nFft, hop and window.</summary>
    public StftMagnitudeOp Forward { get; }

    public override string Name => "stft_magnitude_backward";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 2) throw Invalid(Name, $"expects 2 inputs (wave [B, T], d|X| [B, F, frames]), got {inputs.Length}");
        TensorDesc magnitude;
        try
        {
            magnitude = Forward.InferOutput(inputs[..1]);
        }
        catch (ArgumentException e)
        {
            throw Invalid(Name, e.Message);
        }
        var gradient = inputs[1];
        if (gradient.DType != DType.F32 || !gradient.Shape.SameDims(magnitude.Shape))
            throw Invalid(Name, $"d|X| must be F32{magnitude.Shape} for wave {inputs[0].Shape} (nFft {Forward.NFft}, hop {Forward.Hop}), got {gradient}");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }

    public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        FrameGradientFloats(inputs[1].Shape) * sizeof(float);

    /// <summary>Floats of the frame gradients [B, frames, nFft] for d|X| of <paramref name="magnitude"/>'s dims.</summary>
    public long FrameGradientFloats(TensorShape magnitude) => (long)magnitude[0] * magnitude[2] * Forward.NFft;
}

/// <summary>
/// Applies a mel filterbank [nMels, F] to magnitudes [B, F, frames], giving [B, nMels, frames] (f32).
/// </summary>
public sealed class MelSpectrogramOp : Op<MelSpectrogramOp>, IDifferentiable
{
    public static readonly MelSpectrogramOp Instance = new();
    private MelSpectrogramOp() { }

    public override string Name => "mel_spectrogram";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 2)
            throw Invalid(Name, $"expects 2 inputs (magnitude [B, F, frames], filterbank [nMels, F]), got {inputs.Length}");
        var magnitude = inputs[0];
        var filterbank = inputs[1];
        if (magnitude.DType != DType.F32 || filterbank.DType != DType.F32)
            throw Invalid(Name, $"inputs must be F32, got magnitude {magnitude} and filterbank {filterbank}");
        if (magnitude.Shape.Rank != 3) throw Invalid(Name, $"magnitude must be [B, F, frames], got {magnitude.Shape}");
        if (filterbank.Shape.Rank != 2) throw Invalid(Name, $"filterbank must be [nMels, F], got {filterbank.Shape}");
        if (filterbank.Shape[1] != magnitude.Shape[1])
            throw Invalid(Name, $"filterbank {filterbank.Shape} has {filterbank.Shape[1]} bins but magnitude {magnitude.Shape} has {magnitude.Shape[1]}");
        return new TensorDesc(DType.F32, new TensorShape(magnitude.Shape[0], filterbank.Shape[0], magnitude.Shape[2]));
    }

    /// <summary>mel = filterbank · magnitude per batch item: the gradients of that matmul.</summary>
    public void Backward(GradientContext context)
    {
        Value magnitude = context.Input(0), filterbank = context.Input(1), dy = context.OutputGradient;
        if (context.NeedsGradient(0))
            context.AddGradient(0, MatMulGradient.OfB(context.Graph, filterbank, magnitude, false, false, dy));
        if (context.NeedsGradient(1))
            context.AddGradient(1, MatMulGradient.OfA(context.Graph, filterbank, magnitude, false, false, dy));
    }
}

/// <summary>Elementwise log(max(x, <see cref="Min"/>)) on f32, any shape; may run in place.</summary>
public sealed class LogClampOp : Op<LogClampOp>, IDifferentiable
{
    public LogClampOp(float min)
    {
        if (!(min > 0) || float.IsInfinity(min))
            throw Invalid("log_clamp", $"min must be a finite positive number, got {min}");
        Min = min;
    }

    public float Min { get; }

    public override string Name => "log_clamp";
    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 1) throw Invalid(Name, $"expects 1 input, got {inputs.Length}");
        if (inputs[0].DType != DType.F32) throw Invalid(Name, $"input must be F32, got {inputs[0]}");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }

    public void Backward(GradientContext context) =>
        context.AddGradient(0, context.Graph.Apply(new LogClampGradientOp(Min), context.Input(0), context.OutputGradient));
}

/// <summary>
/// The gradient of <see cref="LogClampOp"/>: dx = dy / x where x ≥ <see cref="Min"/>, 0 below it (and for NaN x), as
/// torch's log(clamp(x, min)). Inputs x and dy, f32 with equal dims; the output may reuse dy's memory.
/// </summary>
public sealed class LogClampGradientOp : Op<LogClampGradientOp>
{
    public LogClampGradientOp(float min)
    {
        if (!(min > 0) || float.IsInfinity(min))
            throw Invalid("log_clamp_backward", $"min must be a finite positive number, got {min}");
        Min = min;
    }

    public float Min { get; }

    public override string Name => "log_clamp_backward";
    public override int InPlaceInput => 1;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 2) throw Invalid(Name, $"expects 2 inputs (x, dy), got {inputs.Length}");
        TensorDesc x = inputs[0], dy = inputs[1];
        if (x.DType != DType.F32 || dy.DType != DType.F32 || !x.Shape.SameDims(dy.Shape))
            throw Invalid(Name, $"x and dy must be F32 with equal dims, got x {x} and dy {dy}");
        return new TensorDesc(DType.F32, new TensorShape(x.Shape.Dims.ToArray()));
    }
}

/// <summary>
/// Slaney-style mel filterbanks, as <c>librosa.filters.mel(htk=False, norm='slaney')</c> builds them: mels linear
/// below 1 kHz (200/3 Hz per mel) and logarithmic above, triangles normalised to unit area (2 / bandwidth).
/// </summary>
public static class MelFilterbank
{
    private const double LinearHzPerMel = 200.0 / 3.0;
    private const double LogRegionStartHz = 1000.0;
    private const double LogRegionStartMel = LogRegionStartHz / LinearHzPerMel;
    private static readonly double LogStep = Math.Log(6.4) / 27.0;

    /// <summary>
    /// The filterbank as a row-major [<paramref name="nMels"/>, <paramref name="nFft"/>/2+1] matrix: row m weights the
    /// one-sided FFT bins (bin k at k·sampleRate/nFft Hz) into mel band m.
    /// </summary>
    public static float[] Slaney(int sampleRate, int nFft, int nMels, double fMin, double fMax)
    {
        if (sampleRate <= 0) throw new ArgumentException($"mel filterbank: sampleRate must be positive, got {sampleRate}");
        if (nFft < 2) throw new ArgumentException($"mel filterbank: nFft must be >= 2, got {nFft}");
        if (nMels < 1) throw new ArgumentException($"mel filterbank: nMels must be >= 1, got {nMels}");
        if (!(fMin >= 0) || !(fMax > fMin) || double.IsInfinity(fMax))
            throw new ArgumentException($"mel filterbank: need 0 <= fMin < fMax, got fMin {fMin}, fMax {fMax}");

        int bins = nFft / 2 + 1;
        // nMels + 2 band edges equally spaced in mel; band m rises on [edge m, edge m+1] and falls on [edge m+1, edge m+2].
        var edges = new double[nMels + 2];
        double melLow = HzToMel(fMin), melHigh = HzToMel(fMax);
        for (int i = 0; i < edges.Length; i++)
            edges[i] = MelToHz(melLow + (melHigh - melLow) * i / (nMels + 1));

        var weights = new float[nMels * bins];
        for (int m = 0; m < nMels; m++)
        {
            double lower = edges[m], center = edges[m + 1], upper = edges[m + 2];
            double areaNorm = 2.0 / (upper - lower);
            for (int k = 0; k < bins; k++)
            {
                double hz = (double)k * sampleRate / nFft;
                double rising = (hz - lower) / (center - lower);
                double falling = (upper - hz) / (upper - center);
                weights[m * bins + k] = (float)(Math.Max(0.0, Math.Min(rising, falling)) * areaNorm);
            }
        }
        return weights;
    }

    public static double HzToMel(double hz) =>
        hz >= LogRegionStartHz ? LogRegionStartMel + Math.Log(hz / LogRegionStartHz) / LogStep : hz / LinearHzPerMel;

    public static double MelToHz(double mel) =>
        mel >= LogRegionStartMel ? LogRegionStartHz * Math.Exp(LogStep * (mel - LogRegionStartMel)) : mel * LinearHzPerMel;
}

/// <summary>Graph-building entry points of the audio front end.</summary>
public static class AudioOps
{
    /// <summary>|torch.stft(wave, nFft, hop, winLength, hann_window(winLength), center=True, reflect, onesided)|.</summary>
    public static Value StftMagnitude(this GraphBuilder g, Value wave, int nFft, int hop, int winLength) =>
        g.Apply(new StftMagnitudeOp(nFft, hop, winLength), wave);

    /// <summary>filterbank [nMels, F] · magnitude [B, F, frames] per batch item, giving [B, nMels, frames].</summary>
    public static Value MelSpectrogram(this GraphBuilder g, Value magnitude, Value filterbank) =>
        g.Apply(MelSpectrogramOp.Instance, magnitude, filterbank);

    /// <summary>log(max(x, min)); the dynamic-range compression of AudioLDM-style mel features.</summary>
    public static Value LogClamp(this GraphBuilder g, Value x, float min = 1e-5f) =>
        g.Apply(new LogClampOp(min), x);
}
