using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<StftMagnitudeGradientOp>, IKernelWorkspace<StftMagnitudeGradientOp>
{
    /// <summary>The frame gradients (every backend's part), then the block buffers of the FFTs.</summary>
    public long WorkspaceBytes(StftMagnitudeGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        op.WorkspaceBytes(inputs, output) + StftKernel.WorkspaceBytes(FftPlan(op.Forward), inputs[1].Shape[0], inputs[1].Shape[2]);

    public unsafe void Execute(StftMagnitudeGradientOp op, in KernelArgs args)
    {
        Tensor wave = args.Input(0), magnitudeGradient = args.Input(1);
        float* frameGradients = args.Workspace.Ptr<float>();
        var job = new StftKernel.GradientJob(FftPlan(op.Forward), op.Forward.Hop, wave.Ptr<float>(), wave.Dim(0), wave.Dim(1),
            magnitudeGradient.Ptr<float>(), magnitudeGradient.Dim(2), frameGradients,
            frameGradients + op.FrameGradientFloats(magnitudeGradient.Shape), args.Output.Ptr<float>());
        StftKernel.RunWidest(job.Plan, new StftKernel.Gradient(job));
    }
}

/// <summary>
/// The gradient of |STFT| on the CPU, in two passes. Per block of frames (one per lane, as the forward): the forward FFT
/// gives X; bin k's gradient C[k] = d|X[k]| · X[k] / |X[k]| (0 where |X[k]| = 0); a frame's sample gradient is
/// Re Σ_{k≤N/2} C[k] e^(2πikn/N), the unnormalised inverse real FFT of the Hermitian spectrum H (H[k] = C[k]/2 inside,
/// H[0] = C[0], H[N/2] = C[N/2]), done as the forward's half-size complex FFT run on conjugates; times the window, it
/// is stored per frame. Then every wave sample sums its frames' gradients in a fixed order (see
/// <see cref="OverlapAddGradients"/>).
/// </summary>
internal static unsafe partial class StftKernel
{
    /// <summary>
    /// One gradient call: waves [Batch, Samples] and d|X| [Batch, M+1, Frames] in; frame gradients [Batch, Frames, N]
    /// (scratch), block buffers (scratch, <see cref="WorkspaceBytes"/>) and dwave [Batch, Samples] out.
    /// </summary>
    public readonly struct GradientJob(RealFftPlan plan, int hop, float* wave, int batch, int samples,
        float* magnitudeGradient, int frames, float* frameGradients, float* blockBuffers, float* waveGradient)
    {
        public readonly RealFftPlan Plan = plan;
        public readonly int Hop = hop;
        public readonly float* Wave = wave;
        public readonly int Batch = batch;
        public readonly int Samples = samples;
        public readonly float* MagnitudeGradient = magnitudeGradient;
        public readonly int Frames = frames;
        public readonly float* FrameGradients = frameGradients;
        public readonly float* BlockBuffers = blockBuffers;
        public readonly float* WaveGradient = waveGradient;
    }

    /// <summary><see cref="RunGradient{TLanes, TVec}"/> as an <see cref="ILaneProgram"/>.</summary>
    public readonly struct Gradient(GradientJob job) : ILaneProgram
    {
        public void Run<TLanes, TVec>() where TLanes : struct, ILanes<TVec> where TVec : unmanaged =>
            RunGradient<TLanes, TVec>(job);
    }

    /// <summary>dwave of <paramref name="job"/>, the per-frame pass at one lane width.</summary>
    public static void RunGradient<TLanes, TVec>(GradientJob job)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        ForEachBlock(job.Plan, TLanes.Count, job.Batch, job.Frames, job.BlockBuffers, (buffer, item, firstFrame, tail) =>
            FrameGradientBlock<TLanes, TVec>(job, item, firstFrame, buffer, tail));
        OverlapAddGradients(job);
    }

    /// <summary>The sample gradients of frames [firstFrame, firstFrame + lanes) of waveform <paramref name="item"/>.</summary>
    private static void FrameGradientBlock<TLanes, TVec>(in GradientJob job, long item, int firstFrame, float* buffer, float* tail)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        var plan = job.Plan;
        int validLanes = LoadAndTransform<TLanes, TVec>(plan, job.Hop, job.Wave + item * job.Samples, job.Samples, job.Frames,
            firstFrame, buffer);
        float* magnitudeGradient = job.MagnitudeGradient + item * (plan.Half + 1) * job.Frames + firstFrame;
        SplitGradient<TLanes, TVec>(plan, buffer, magnitudeGradient, job.Frames, validLanes, tail);
        BitReverse(plan, buffer, TLanes.Count);
        Transform<TLanes, TVec>(plan, buffer);
        StoreFrameGradients(plan, buffer, job.FrameGradients + (item * job.Frames + firstFrame) * plan.Size, validLanes, TLanes.Count);
    }

    /// <summary>
    /// Turns the bit-reversed Z of the frames into the conjugated half-size spectrum Z' whose inverse FFT is the
    /// frame's sample gradient, in place (slot of bin k: Z'[k]). Bins k and M-k are done together as in
    /// <see cref="SplitMagnitudes{TLanes, TVec}"/>; with A = H[k], B = H[M-k], w = e^(-2πik/N) = c + i·s:
    ///   Z'[k]   = (A + conj B) + i·conj(w)·(A - conj B) = (Sr + P) + i·(Si + Q)
    ///   Z'[M-k] = (B + conj A) - i·w·(B - conj A)       = (Sr - P) + i·(Q - Si)
    /// where S = A + conj B, D = A - conj B, P = s·Dr - c·Di and Q = s·Di + c·Dr.
    /// </summary>
    private static void SplitGradient<TLanes, TVec>(RealFftPlan plan, float* buffer, float* magnitudeGradient, int frames,
        int validLanes, float* tail)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        int lanes = TLanes.Count;
        int stride = 2 * lanes;
        int mask = plan.Half - 1;
        int* bitReverse = plan.BitReverse;
        for (int k = 0; k <= plan.Half / 2; k++)
        {
            float* a = buffer + (long)bitReverse[k & mask] * stride;
            float* b = buffer + (long)bitReverse[(plan.Half - k) & mask] * stride;
            // 2X[k] and 2X[M-k], as the forward computes them.
            var (xaR, xaI, xbR, xbI, c, s) = SplitBins<TLanes, TVec>(plan, buffer, k);
            // H = C/2 inside the spectrum, C itself at bins 0 and M (k = 0), so that Σ_n H[n]·e^(2πikn/N) is real.
            TVec half = TLanes.Broadcast(k == 0 ? 1f : 0.5f);
            TVec scaleA = TLanes.DivideOrZero(TLanes.Mul(half, LoadBin<TLanes, TVec>(magnitudeGradient + (long)k * frames, validLanes, tail)),
                TLanes.Sqrt(TLanes.MulAdd(xaR, xaR, TLanes.Mul(xaI, xaI))));
            TVec scaleB = TLanes.DivideOrZero(TLanes.Mul(half, LoadBin<TLanes, TVec>(magnitudeGradient + (long)(plan.Half - k) * frames, validLanes, tail)),
                TLanes.Sqrt(TLanes.MulAdd(xbR, xbR, TLanes.Mul(xbI, xbI))));
            TVec hAr = TLanes.Mul(scaleA, xaR), hAi = TLanes.Mul(scaleA, xaI);
            TVec hBr = TLanes.Mul(scaleB, xbR), hBi = TLanes.Mul(scaleB, xbI);
            TVec sr = TLanes.Add(hAr, hBr), si = TLanes.Sub(hAi, hBi);
            TVec er = TLanes.Sub(hAr, hBr), ei = TLanes.Add(hAi, hBi);
            TVec pp = TLanes.Sub(TLanes.Mul(s, er), TLanes.Mul(c, ei));
            TVec qq = TLanes.MulAdd(s, ei, TLanes.Mul(c, er));
            // Stored conjugated: the forward FFT of conj Z' is the conjugate of Z''s inverse transform.
            TLanes.Store(a, TLanes.Add(sr, pp));
            TLanes.Store(a + lanes, TLanes.Sub(TLanes.Broadcast(0f), TLanes.Add(si, qq)));
            TLanes.Store(b, TLanes.Sub(sr, pp));
            TLanes.Store(b + lanes, TLanes.Sub(si, qq));
        }
    }

    /// <summary>d|X| of one bin for the block's frames; lanes past the last frame read 0.</summary>
    private static TVec LoadBin<TLanes, TVec>(float* row, int validLanes, float* tail)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        if (validLanes == TLanes.Count) return TLanes.Load(row);
        for (int lane = 0; lane < TLanes.Count; lane++) tail[lane] = lane < validLanes ? row[lane] : 0f;
        return TLanes.Load(tail);
    }

    /// <summary>Moves slot i to slot bitReverse[i] (an involution: swap each pair once), giving natural order.</summary>
    private static void BitReverse(RealFftPlan plan, float* buffer, int lanes)
    {
        int stride = 2 * lanes;
        int* bitReverse = plan.BitReverse;
        for (int i = 0; i < plan.Half; i++)
        {
            int j = bitReverse[i];
            if (j <= i) continue;
            var first = new Span<float>(buffer + (long)i * stride, stride);
            var second = new Span<float>(buffer + (long)j * stride, stride);
            for (int t = 0; t < stride; t++) (first[t], second[t]) = (second[t], first[t]);
        }
    }

    /// <summary>
    /// The FFT of conj Z' sits bit-reversed in the buffer; its conjugate z[m] = v[2m] + i·v[2m+1] holds the frame's
    /// sample gradient v before the window. Stores window[n]·v[n] for each real frame at output[lane·N + n].
    /// </summary>
    private static void StoreFrameGradients(RealFftPlan plan, float* buffer, float* output, int validLanes, int lanes)
    {
        int stride = 2 * lanes;
        float* window = plan.Window;
        int* bitReverse = plan.BitReverse;
        for (int m = 0; m < plan.Half; m++)
        {
            float* slot = buffer + (long)bitReverse[m] * stride;
            for (int lane = 0; lane < validLanes; lane++)
            {
                float* frame = output + (long)lane * plan.Size;
                frame[2 * m] = window[2 * m] * slot[lane];
                frame[2 * m + 1] = -window[2 * m + 1] * slot[lanes + lane];
            }
        }
    }

    /// <summary>
    /// dwave from the frame gradients: sample i of a wave sums, in this order, the frames (ascending) that read padded
    /// position i + N/2 directly, then those reading its left reflection N/2 - i (1 ≤ i ≤ N/2), then its right
    /// reflection N/2 + 2(T-1) - i (T-1-N/2 ≤ i ≤ T-2). kernels/stft.cu sums in the same order.
    /// </summary>
    private static void OverlapAddGradients(GradientJob job) =>
        CpuParallel.For((long)job.Batch * job.Samples, 4096, (start, end) =>
        {
            int samples = job.Samples, pad = job.Plan.Size / 2;
            for (long index = start; index < end; index++)
            {
                long item = index / samples;
                int i = (int)(index - item * samples);
                float* frames = job.FrameGradients + item * job.Frames * job.Plan.Size;
                float sum = PaddedPositionGradient(job, frames, i + pad, 0f);
                if (i >= 1 && i <= pad) sum = PaddedPositionGradient(job, frames, pad - i, sum);
                if (i >= samples - 1 - pad && i <= samples - 2) sum = PaddedPositionGradient(job, frames, pad + 2 * (samples - 1) - i, sum);
                job.WaveGradient[index] = sum;
            }
        });

    /// <summary><paramref name="sum"/> plus the gradients of padded position j from the frames that read it, in frame order.</summary>
    private static float PaddedPositionGradient(in GradientJob job, float* frames, int j, float sum)
    {
        int size = job.Plan.Size;
        int first = Math.Max(0, (j - size + job.Hop) / job.Hop), last = Math.Min(job.Frames - 1, j / job.Hop);
        for (int f = first; f <= last; f++) sum += frames[(long)f * size + j - f * job.Hop];
        return sum;
    }
}
