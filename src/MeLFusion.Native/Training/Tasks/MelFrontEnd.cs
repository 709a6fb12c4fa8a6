using MeLFusion.Native.Models;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training.Tasks;

/// <summary>
/// The TacotronSTFT mel front end of spec §2.5 as graph ops: |STFT| (n_fft = win = 1024, hop 160, periodic Hann,
/// reflect-padded), the Slaney filterbank to 64 bands up to 8 kHz, log(clamp(·, 1e-5)). Differentiable, so the vocoder's
/// mel loss reaches the generated waveform.
/// </summary>
public sealed class MelFrontEnd(int sampleRate, int melBands, int hop) : IDisposable
{
    public const int FftSize = 1024;
    private readonly HostConstants _constants = new();

    /// <summary>Frames of a clip of <paramref name="samples"/> samples: 1 + samples / hop (the STFT is centred).</summary>
    public int Frames(int samples) => 1 + samples / hop;

    /// <summary>Log-mel of <paramref name="wave"/> [B, samples] as [B, bands, frames].</summary>
    public Value LogMel(GraphBuilder g, IBackend backend, Value wave)
    {
        var magnitude = g.StftMagnitude(wave, FftSize, hop, FftSize);
        var filterbank = _constants.Get(g, backend, $"mel filterbank {sampleRate}/{melBands}", [melBands, FftSize / 2 + 1],
            () => MelFilterbank.Slaney(sampleRate, FftSize, melBands, 0, sampleRate / 2.0));
        return g.LogClamp(g.MelSpectrogram(magnitude, filterbank));
    }

    /// <summary>The VAE's view of a log-mel: [B, 1, frames, bands] cropped to the first <paramref name="frames"/> frames.</summary>
    public static Value AsImage(GraphBuilder g, Value logMel, int frames)
    {
        var timeMajor = g.Permute(logMel, 0, 2, 1);
        var cropped = g.Slice(timeMajor, 1, 0, frames);
        return g.Reshape(g.Contiguous(cropped), logMel.Shape[0], 1, frames, logMel.Shape[1]);
    }

    public void Dispose() => _constants.Dispose();
}
