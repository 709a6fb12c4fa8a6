using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// The audio front end: kernels/stft.cu for |STFT| (one block per frame) and its gradient (one block per frame, then
/// one thread per wave sample), and log(max(x, min)) and its gradient; the mel projection is a batched GEMM with the
/// filterbank shared across the batch.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<StftMagnitudeOp>, IKernel<MelSpectrogramOp>, IKernel<LogClampOp>,
    IKernel<StftMagnitudeGradientOp>, IKernel<LogClampGradientOp>
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
        var (threads, sharedBytes) = StftBlock(op.Name, op, wave, 2L * op.NFft + 2);
        Launch("stft_magnitude_f32", (frames, batch), threads, sharedBytes,
            wave, magnitude, samples, frames, op.NFft, op.Hop, op.WinLength);
    }

    public void Execute(StftMagnitudeGradientOp op, in KernelArgs args)
    {
        Tensor wave = args.Input(0), magnitudeGradient = args.Input(1), waveGradient = args.Output;
        var forward = op.Forward;
        int batch = wave.Dim(0), samples = wave.Dim(1), frames = magnitudeGradient.Dim(2);
        if (wave.ElementCount == 0) return;
        // The forward's FFT buffer and twiddles plus the spectrum gradient H[k], k = 0..nFft/2, as (re, im) pairs.
        var (threads, sharedBytes) = StftBlock(op.Name, forward, wave, 3L * forward.NFft + 4);
        nint frameGradients = args.Workspace.Data;
        Launch("stft_magnitude_backward_frames_f32", (frames, batch), threads, sharedBytes,
            wave, magnitudeGradient, frameGradients, samples, frames, forward.NFft, forward.Hop, forward.WinLength);
        LaunchElementwise("stft_magnitude_backward_overlap_f32", wave.ElementCount,
            frameGradients, waveGradient, wave.ElementCount, samples, frames, forward.NFft, forward.Hop);
    }

    /// <summary>
    /// Threads and shared bytes of a one-block-per-frame STFT kernel over <paramref name="wave"/> that keeps
    /// <paramref name="sharedFloats"/> floats in shared memory; throws where a launch cannot hold them.
    /// </summary>
    private static (int Threads, uint SharedBytes) StftBlock(string name, StftMagnitudeOp op, Tensor wave, long sharedFloats)
    {
        long sharedBytes = sharedFloats * sizeof(float);
        if (sharedBytes > GroupNormKernel.DefaultSharedLimit)
            throw new NotSupportedException(
                $"{name}: nFft {op.NFft} needs {sharedBytes} bytes of shared memory, over {GroupNormKernel.DefaultSharedLimit}");
        if (wave.Dim(0) > MaxStftBatch)
            throw new NotSupportedException($"{name}: wave {wave} has {wave.Dim(0)} waveforms; a launch takes at most {MaxStftBatch}");
        return ((int)Math.Clamp((op.NFft / 4 + 31) / 32 * 32, 32, MaxStftThreads), (uint)sharedBytes);
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

    public void Execute(LogClampGradientOp op, in KernelArgs args) =>
        LaunchElementwise("log_clamp_backward_f32", args.Output.ElementCount,
            args.Input(0), args.Input(1), args.Output, args.Output.ElementCount, op.Min);
}
