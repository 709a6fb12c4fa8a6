using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// The audio front end: kernels/stft.cu for |STFT| (one block per frame) and log(max(x, min)); the mel projection is a
/// batched GEMM with the filterbank shared across the batch.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<StftMagnitudeOp>, IKernel<MelSpectrogramOp>, IKernel<LogClampOp>
{
    /// <summary>Most threads per STFT block: one per butterfly of a 512-point complex FFT (nFft 1024).</summary>
    private const int MaxStftThreads = 256;

    /// <summary>Most batch items one STFT launch covers (grid y; frames run along grid x, which takes any int).</summary>
    private const int MaxStftBatch = 65535;

    public void Execute(StftMagnitudeOp op, in KernelArgs args)
    {
        Tensor wave = args.Input(0), magnitude = args.Output;
        int batch = wave.Dim(0), samples = wave.Dim(1), frames = magnitude.Dim(2);
        if (magnitude.ElementCount == 0) return;
        // The FFT buffer (nFft floats) plus the twiddles W^k, k = 0..nFft/2, as (cos, -sin) pairs.
        long sharedBytes = (2L * op.NFft + 2) * sizeof(float);
        if (sharedBytes > GroupNormKernel.DefaultSharedLimit)
            throw new NotSupportedException(
                $"{op.Name}: nFft {op.NFft} needs {sharedBytes} bytes of shared memory, over {GroupNormKernel.DefaultSharedLimit}");
        if (batch > MaxStftBatch)
            throw new NotSupportedException($"{op.Name}: wave {wave} has {batch} waveforms; a launch takes at most {MaxStftBatch}");
        int threads = (int)Math.Clamp((op.NFft / 4 + 31) / 32 * 32, 32, MaxStftThreads);
        Launch("stft_magnitude_f32", (frames, batch), threads, (uint)sharedBytes,
            wave, magnitude, samples, frames, op.NFft, op.Hop, op.WinLength);
    }

    public void Execute(MelSpectrogramOp op, in KernelArgs args)
    {
        Tensor magnitude = args.Input(0), filterbank = args.Input(1), mel = args.Output;
        if (mel.ElementCount == 0) return;
        int batch = magnitude.Dim(0), bins = magnitude.Dim(1), frames = magnitude.Dim(2), melBands = filterbank.Dim(0);
        // mel[b] [nMels, frames] = filterbank [nMels, F] · magnitude[b] [F, frames].
        Gemm(new GemmCall(DType.F32, melBands, frames, bins,
            filterbank.Data, bins, 1, 0,
            magnitude.Data, frames, 1, (long)bins * frames,
            mel.Data, frames, (long)melBands * frames,
            0, batch));
    }

    public void Execute(LogClampOp op, in KernelArgs args) =>
        LaunchElementwise("log_clamp_f32", args.Output.ElementCount, args.Input(0), args.Output, args.Output.ElementCount, op.Min);
}
