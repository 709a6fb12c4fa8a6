using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<StftMagnitudeOp>, IKernelWorkspace<StftMagnitudeOp>
{
    /// <summary>Window, twiddle and bit-reversal tables per op, built once (at planning) so that runs only read them.</summary>
    private readonly ConditionalWeakTable<StftMagnitudeOp, RealFftPlan> _fftPlans = new();

    internal RealFftPlan FftPlan(StftMagnitudeOp op) => _fftPlans.GetValue(op, o => new RealFftPlan(o.NFft, o.WinLength));

    /// <summary>Per-worker blocks of frames, one frame per vector lane.</summary>
    public long WorkspaceBytes(StftMagnitudeOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        StftKernel.WorkspaceBytes(FftPlan(op), output.Shape[0], output.Shape[2]);

    public unsafe void Execute(StftMagnitudeOp op, in KernelArgs args)
    {
        var wave = args.Input(0);
        var output = args.Output;
        var fft = FftPlan(op);
        var job = new StftKernel.Job(fft, op.Hop, wave.Ptr<float>(), wave.Dim(0), wave.Dim(1),
            output.Ptr<float>(), output.Dim(2), args.Workspace.Ptr<float>());
        StftKernel.RunWidest(fft, new StftKernel.Magnitudes(job));
    }
}

/// <summary>
/// Precomputed tables of a real FFT of size N = 2M done as a complex FFT of size M: the centred, zero-padded periodic
/// Hann window, the twiddles of each radix-4 decimation-in-frequency stage, the bit-reversal permutation that undoes
/// the DIF output order, and the twiddles that split the half-size spectrum into the real signal's spectrum.
/// Arrays are pinned (pinned object heap) so kernels read them through raw pointers.
/// </summary>
internal sealed unsafe class RealFftPlan
{
    private readonly float[] _window;
    private readonly float[] _stageTwiddles;
    private readonly int[] _stageOffsets;
    private readonly int[] _bitReverse;
    private readonly float[] _splitTwiddles;

    public RealFftPlan(int size, int windowLength)
    {
        Size = size;
        Half = size / 2;

        // torch.hann_window(windowLength, periodic=True), placed at (size - windowLength) / 2 like torch.stft does.
        _window = GC.AllocateArray<float>(size, pinned: true);
        int left = (size - windowLength) / 2;
        for (int i = 0; i < windowLength; i++)
            _window[left + i] = (float)(0.5 - 0.5 * Math.Cos(2.0 * Math.PI * i / windowLength));

        // Radix-4 stages of lengths M, M/4, ... >= 4; each butterfly j < L/4 uses w^j, w^2j, w^3j with w = e^(-2πi/L),
        // stored as (cos, sin) pairs. An odd power of two leaves one final twiddle-free radix-2 stage.
        var offsets = new List<int>();
        int total = 0;
        for (int length = Half; length >= 4; length /= 4)
        {
            offsets.Add(total);
            total += 6 * (length / 4);
        }
        _stageOffsets = offsets.ToArray();
        FinalRadix2 = BitLength(Half) % 2 == 1;
        _stageTwiddles = GC.AllocateArray<float>(Math.Max(total, 1), pinned: true);
        int stage = 0;
        for (int length = Half; length >= 4; length /= 4, stage++)
        {
            float* twiddles = StageTwiddles(stage);
            for (int j = 0; j < length / 4; j++)
                for (int power = 1; power <= 3; power++)
                {
                    double angle = -2.0 * Math.PI * power * j / length;
                    twiddles[6 * j + 2 * (power - 1)] = (float)Math.Cos(angle);
                    twiddles[6 * j + 2 * (power - 1) + 1] = (float)Math.Sin(angle);
                }
        }

        _bitReverse = GC.AllocateArray<int>(Half, pinned: true);
        int bits = BitLength(Half);
        for (int i = 0; i < Half; i++)
        {
            int reversed = 0;
            for (int b = 0; b < bits; b++) reversed |= ((i >> b) & 1) << (bits - 1 - b);
            _bitReverse[i] = reversed;
        }

        // X[k] = (Z[k] + conj Z[M-k]) / 2 + e^(-2πik/N) (Z[k] - conj Z[M-k]) / 2i; bins are done in pairs k, M-k
        // whose twiddles are mirror images, so only k = 0..M/2 are kept.
        _splitTwiddles = GC.AllocateArray<float>(2 * (Half / 2 + 1), pinned: true);
        for (int k = 0; k <= Half / 2; k++)
        {
            double angle = -2.0 * Math.PI * k / size;
            _splitTwiddles[2 * k] = (float)Math.Cos(angle);
            _splitTwiddles[2 * k + 1] = (float)Math.Sin(angle);
        }
    }

    /// <summary>N, the real transform size (nFft).</summary>
    public int Size { get; }
    /// <summary>M = N/2, the complex transform size.</summary>
    public int Half { get; }
    public int RadixFourStages => _stageOffsets.Length;
    public bool FinalRadix2 { get; }

    public float* Window => Address(_window);
    public float* StageTwiddles(int stage) => Address(_stageTwiddles) + _stageOffsets[stage];
    public int* BitReverse => Address(_bitReverse);
    public float* SplitTwiddles => Address(_splitTwiddles);

    /// <summary>Address of element 0; stable because the arrays live on the pinned object heap.</summary>
    private static T* Address<T>(T[] pinnedArray) where T : unmanaged =>
        (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinnedArray));

    private static int BitLength(int powerOfTwo) => System.Numerics.BitOperations.Log2((uint)powerOfTwo);
}

/// <summary>
/// STFT magnitude on the CPU. Frames are transformed in blocks of one vector's worth of lanes, one frame per lane
/// (structure of arrays), so every butterfly is plain vertical SIMD with broadcast twiddles and each output bin of a
/// block is one contiguous vector store into [B, F, frames]. Blocks are spread over cores; each worker slot owns a
/// block buffer in the op workspace.
/// </summary>
internal static unsafe partial class StftKernel
{
    /// <summary>Frames per block at the widest vector (Vector512 of floats); sizes the workspace for every width.</summary>
    public const int MaxLanes = 16;

    /// <summary>
    /// Block buffers up to this size leave room in a 32 KB L1d for the frames being read and the tables; measured on
    /// Zen 4, 16-lane blocks win at nFft 256 (16 KB) and 8-lane blocks at nFft 512 and 1024.
    /// </summary>
    private const int L1BlockBudgetBytes = 16 * 1024;

    /// <summary>Whether 16-lane (Vector512) blocks of this transform size fit the L1 budget.</summary>
    public static bool FitsWideBlocks(RealFftPlan plan) => SlotFloats(plan) * sizeof(float) <= L1BlockBudgetBytes;

    /// <summary>One kernel call: waveforms [Batch, Samples] in, magnitudes [Batch, M+1, Frames] out.</summary>
    public readonly struct Job(RealFftPlan plan, int hop, float* wave, int batch, int samples, float* output, int frames,
        float* workspace)
    {
        public readonly RealFftPlan Plan = plan;
        public readonly int Hop = hop;
        public readonly float* Wave = wave;
        public readonly int Batch = batch;
        public readonly int Samples = samples;
        public readonly float* Output = output;
        public readonly int Frames = frames;
        public readonly float* Workspace = workspace;
    }

    /// <summary>Independent block buffers: a few per core, as CpuParallel would split, but never more than blocks.</summary>
    public static int Slots(int batch, int frames) =>
        (int)Math.Max(1, Math.Min(CpuParallel.Workers * 4L, (long)batch * ((frames + MaxLanes - 1) / MaxLanes)));

    /// <summary>One block buffer: M complex elements of MaxLanes re then MaxLanes im floats.</summary>
    private static long SlotFloats(RealFftPlan plan) => 2L * plan.Half * MaxLanes;

    public static long WorkspaceBytes(RealFftPlan plan, int batch, int frames) =>
        Slots(batch, frames) * SlotFloats(plan) * sizeof(float);

    /// <summary>A kernel written once against <see cref="ILanes{TVec}"/>, run at one lane width.</summary>
    public interface ILaneProgram
    {
        void Run<TLanes, TVec>() where TLanes : struct, ILanes<TVec> where TVec : unmanaged;
    }

    /// <summary>Runs <paramref name="program"/> at the widest lanes the hardware has and the L1 budget allows.</summary>
    public static void RunWidest<TProgram>(RealFftPlan plan, TProgram program) where TProgram : ILaneProgram
    {
        if (Vector512.IsHardwareAccelerated && FitsWideBlocks(plan)) program.Run<Lanes512, Vector512<float>>();
        else if (Vector256.IsHardwareAccelerated) program.Run<Lanes256, Vector256<float>>();
        else if (Vector128.IsHardwareAccelerated) program.Run<Lanes128, Vector128<float>>();
        else program.Run<LanesScalar, float>();
    }

    /// <summary><see cref="Run{TLanes, TVec}"/> as an <see cref="ILaneProgram"/>.</summary>
    public readonly struct Magnitudes(Job job) : ILaneProgram
    {
        public void Run<TLanes, TVec>() where TLanes : struct, ILanes<TVec> where TVec : unmanaged =>
            StftKernel.Run<TLanes, TVec>(job);
    }

    /// <summary>The magnitudes of every frame of <paramref name="job"/> at one lane width.</summary>
    public static void Run<TLanes, TVec>(Job job)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged =>
        ForEachBlock(job.Plan, TLanes.Count, job.Batch, job.Frames, job.Workspace, (buffer, item, firstFrame, tail) =>
            TransformBlock<TLanes, TVec>(job, job.Wave + item * job.Samples,
                job.Output + item * (job.Plan.Half + 1) * job.Frames, firstFrame, buffer, tail));

    /// <summary>Work on one block: frames [firstFrame, firstFrame + lanes) of waveform <paramref name="item"/>.</summary>
    public delegate void BlockBody(float* buffer, long item, int firstFrame, float* tail);

    /// <summary>
    /// Calls <paramref name="body"/> for every block of <paramref name="lanes"/> frames of <paramref name="batch"/>
    /// waveforms, the blocks spread over <see cref="Slots"/> worker slots, each with its own block buffer (of
    /// <see cref="SlotFloats"/>, from <paramref name="slotBuffers"/>) and a tail of <see cref="MaxLanes"/> floats.
    /// </summary>
    private static void ForEachBlock(RealFftPlan plan, int lanes, int batch, int frames, float* slotBuffers, BlockBody body)
    {
        int blocksPerItem = (frames + lanes - 1) / lanes;
        long blocks = (long)batch * blocksPerItem;
        int slots = Slots(batch, frames);
        CpuParallel.For(slots, 1, (firstSlot, endSlot) =>
        {
            float* tail = stackalloc float[MaxLanes];
            for (long slot = firstSlot; slot < endSlot; slot++)
            {
                float* buffer = slotBuffers + slot * SlotFloats(plan);
                for (long block = slot * blocks / slots; block < (slot + 1) * blocks / slots; block++)
                    body(buffer, block / blocksPerItem, (int)(block % blocksPerItem) * lanes, tail);
            }
        });
    }

    /// <summary>Magnitudes of frames [firstFrame, firstFrame + lanes) of one waveform into its [F, frames] output.</summary>
    private static void TransformBlock<TLanes, TVec>(in Job job, float* wave, float* output, int firstFrame,
        float* buffer, float* tail)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        int validLanes = LoadAndTransform<TLanes, TVec>(job.Plan, job.Hop, wave, job.Samples, job.Frames, firstFrame, buffer);
        SplitMagnitudes<TLanes, TVec>(job.Plan, buffer, output + firstFrame, job.Frames, validLanes, tail);
    }

    /// <summary>
    /// Loads the windowed frames [firstFrame, firstFrame + lanes) of one waveform into the block buffer and runs the
    /// half-size complex FFT on them, leaving Z in bit-reversed order. Returns how many lanes hold real frames.
    /// </summary>
    private static int LoadAndTransform<TLanes, TVec>(RealFftPlan plan, int hop, float* wave, int samples, int frames,
        int firstFrame, float* buffer)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        int lanes = TLanes.Count;
        int validLanes = Math.Min(lanes, frames - firstFrame);
        int firstStart = firstFrame * hop - plan.Size / 2;
        if (validLanes == lanes && firstStart >= 0 && firstStart + (lanes - 1) * hop + plan.Size <= samples)
        {
            TLanes.LoadWindowedFrames(wave + firstStart, hop, plan.Window, plan.Size, buffer);
        }
        else
        {
            for (int lane = 0; lane < lanes; lane++)
            {
                // Lanes past the last frame repeat it so the block stays well-defined; their results are not stored.
                int frame = firstFrame + Math.Min(lane, validLanes - 1);
                LoadFrame(plan, wave, samples, frame * hop - plan.Size / 2, buffer + lane, lanes);
            }
        }
        Transform<TLanes, TVec>(plan, buffer);
        return validLanes;
    }

    /// <summary>The half-size complex FFT (radix-4 DIF passes, then radix 2 if needed): natural order in, bit-reversed out.</summary>
    private static void Transform<TLanes, TVec>(RealFftPlan plan, float* buffer)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        for (int stage = 0, length = plan.Half; stage < plan.RadixFourStages; stage++, length /= 4)
            RadixFourStage<TLanes, TVec>(buffer, plan.Half, length, plan.StageTwiddles(stage), TLanes.Count);
        if (plan.FinalRadix2) RadixTwoStage<TLanes, TVec>(buffer, plan.Half);
    }

    /// <summary>
    /// Writes one windowed frame starting at padded-signal offset <paramref name="start"/> (negative inside the left
    /// pad) into one lane of the block buffer: sample t at lane[t·lanes], so z[n] = x[2n] + i·x[2n+1]. Only blocks at
    /// the signal's ends or past its last frame come here; the rest take <see cref="ILanes{TVec}.LoadWindowedFrames"/>.
    /// </summary>
    private static void LoadFrame(RealFftPlan plan, float* wave, int samples, int start, float* lane, int lanes)
    {
        float* window = plan.Window;
        for (int t = 0; t < plan.Size; t++)
            lane[t * lanes] = window[t] * wave[Reflect(start + t, samples)];
    }

    /// <summary>
    /// torch's 'reflect' padding: index -i reads x[i] and index T-1+i reads x[T-1-i]; one bounce suffices because the
    /// pad (nFft/2) is shorter than the signal.
    /// </summary>
    private static int Reflect(int index, int samples) =>
        index < 0 ? -index : index >= samples ? 2 * (samples - 1) - index : index;

    /// <summary>
    /// One radix-4 decimation-in-frequency pass over groups of <paramref name="length"/> elements: outputs go to the
    /// quarters in order 0, 2, 1, 3 mod 4, so that after all passes the spectrum sits in bit-reversed order.
    /// </summary>
    private static void RadixFourStage<TLanes, TVec>(float* buffer, int size, int length, float* twiddles, int lanes)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        int quarter = length / 4;
        int stride = 2 * lanes;
        long quarterFloats = (long)quarter * stride;
        long groupFloats = (long)length * stride;
        float* end = buffer + (long)size * stride;
        // j = 0 has unit twiddles (and is the whole of the last, length-4 pass).
        for (float* p = buffer; p < end; p += groupFloats)
            Butterfly<TLanes, TVec, UnitTwiddles<TLanes, TVec>>(p, quarterFloats, lanes, default);
        for (int j = 1; j < quarter; j++)
        {
            float* w = twiddles + 6 * j;
            var rotation = new Twiddles<TLanes, TVec>(w);
            for (float* p = buffer + j * stride; p < end; p += groupFloats)
                Butterfly<TLanes, TVec, Twiddles<TLanes, TVec>>(p, quarterFloats, lanes, rotation);
        }
    }

    /// <summary>The last pass of an odd power of two: length-2 butterflies, whose only twiddle is 1.</summary>
    private static void RadixTwoStage<TLanes, TVec>(float* buffer, int size)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        int lanes = TLanes.Count;
        int stride = 2 * lanes;
        for (float* pair = buffer; pair < buffer + (long)size * stride; pair += 2 * stride)
        {
            TVec ar = TLanes.Load(pair), ai = TLanes.Load(pair + lanes);
            TVec br = TLanes.Load(pair + stride), bi = TLanes.Load(pair + stride + lanes);
            TLanes.Store(pair, TLanes.Add(ar, br));
            TLanes.Store(pair + lanes, TLanes.Add(ai, bi));
            TLanes.Store(pair + stride, TLanes.Sub(ar, br));
            TLanes.Store(pair + stride + lanes, TLanes.Sub(ai, bi));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly<TLanes, TVec, TRotate>(float* p0, long quarter, int lanes, in TRotate rotate)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged where TRotate : struct, IRotate<TVec>
    {
        float* p1 = p0 + quarter, p2 = p1 + quarter, p3 = p2 + quarter;
        TVec a0r = TLanes.Load(p0), a0i = TLanes.Load(p0 + lanes);
        TVec a1r = TLanes.Load(p1), a1i = TLanes.Load(p1 + lanes);
        TVec a2r = TLanes.Load(p2), a2i = TLanes.Load(p2 + lanes);
        TVec a3r = TLanes.Load(p3), a3i = TLanes.Load(p3 + lanes);
        TVec sumEvenR = TLanes.Add(a0r, a2r), sumEvenI = TLanes.Add(a0i, a2i);
        TVec difEvenR = TLanes.Sub(a0r, a2r), difEvenI = TLanes.Sub(a0i, a2i);
        TVec sumOddR = TLanes.Add(a1r, a3r), sumOddI = TLanes.Add(a1i, a3i);
        // (a1 - a3)·(-i) = (Im, -Re)
        TVec difOddR = TLanes.Sub(a1i, a3i), difOddI = TLanes.Sub(a3r, a1r);
        TLanes.Store(p0, TLanes.Add(sumEvenR, sumOddR));
        TLanes.Store(p0 + lanes, TLanes.Add(sumEvenI, sumOddI));
        rotate.Apply(2, TLanes.Sub(sumEvenR, sumOddR), TLanes.Sub(sumEvenI, sumOddI), p1, lanes);
        rotate.Apply(1, TLanes.Add(difEvenR, difOddR), TLanes.Add(difEvenI, difOddI), p2, lanes);
        rotate.Apply(3, TLanes.Sub(difEvenR, difOddR), TLanes.Sub(difEvenI, difOddI), p3, lanes);
    }

    /// <summary>Multiplies a butterfly output by w^power and stores it.</summary>
    private interface IRotate<TVec> where TVec : unmanaged
    {
        void Apply(int power, TVec re, TVec im, float* destination, int lanes);
    }

    private readonly struct UnitTwiddles<TLanes, TVec> : IRotate<TVec>
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Apply(int power, TVec re, TVec im, float* destination, int lanes)
        {
            TLanes.Store(destination, re);
            TLanes.Store(destination + lanes, im);
        }
    }

    private readonly struct Twiddles<TLanes, TVec> : IRotate<TVec>
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        private readonly TVec _c1, _s1, _c2, _s2, _c3, _s3;

        public Twiddles(float* w)
        {
            _c1 = TLanes.Broadcast(w[0]); _s1 = TLanes.Broadcast(w[1]);
            _c2 = TLanes.Broadcast(w[2]); _s2 = TLanes.Broadcast(w[3]);
            _c3 = TLanes.Broadcast(w[4]); _s3 = TLanes.Broadcast(w[5]);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Apply(int power, TVec re, TVec im, float* destination, int lanes)
        {
            TVec c = power == 1 ? _c1 : power == 2 ? _c2 : _c3;
            TVec s = power == 1 ? _s1 : power == 2 ? _s2 : _s3;
            // (re + i·im)(c + i·s)
            TLanes.Store(destination, TLanes.Sub(TLanes.Mul(re, c), TLanes.Mul(im, s)));
            TLanes.Store(destination + lanes, TLanes.MulAdd(re, s, TLanes.Mul(im, c)));
        }
    }

    /// <summary>
    /// Turns the bit-reversed half-size spectrum Z into |X[k]| for k = 0..M and stores bin k of each valid lane at
    /// output[k·frames + lane]. Bins k and M-k share their inputs Z[k], Z[M-k] and (up to sign) their twiddle, so they
    /// are computed together.
    /// </summary>
    private static void SplitMagnitudes<TLanes, TVec>(RealFftPlan plan, float* buffer, float* output, int frames,
        int validLanes, float* tail)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        TVec half = TLanes.Broadcast(0.5f);
        for (int k = 0; k <= plan.Half / 2; k++)
        {
            var bins = SplitBins<TLanes, TVec>(plan, buffer, k);
            StoreBin<TLanes, TVec>(HalfMagnitude<TLanes, TVec>(bins.Ar, bins.Ai, half), output + (long)k * frames, validLanes, tail);
            StoreBin<TLanes, TVec>(HalfMagnitude<TLanes, TVec>(bins.Br, bins.Bi, half), output + (long)(plan.Half - k) * frames, validLanes, tail);
        }
    }

    /// <summary>2X[k] (A) and 2X[M-k] (B) from the bit-reversed half-size spectrum Z, and the split twiddle c + i·s.</summary>
    private readonly record struct SplitPair<TVec>(TVec Ar, TVec Ai, TVec Br, TVec Bi, TVec C, TVec S) where TVec : unmanaged;

    /// <summary>
    /// The split step of the real FFT for bins k and M-k, which share their inputs Z[k], Z[M-k] and (up to sign) their
    /// twiddle. With A = Z[k], B = Z[M-k], w = c + i·s = e^(-2πik/N):
    ///   2X[k]   = (A + conj B) - i·w·(A - conj B)   = (sumR + p) + i·(difI + q)
    ///   2X[M-k] = (B + conj A) + i·conj(w)·(B - conj A) = (sumR - p) + i·(q - difI)
    /// where p = c·(Ai + Bi) + s·(Ar - Br) and q = s·(Ai + Bi) - c·(Ar - Br).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static SplitPair<TVec> SplitBins<TLanes, TVec>(RealFftPlan plan, float* buffer, int k)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        int lanes = TLanes.Count;
        int stride = 2 * lanes;
        int mask = plan.Half - 1;
        float* a = buffer + (long)plan.BitReverse[k & mask] * stride;
        float* b = buffer + (long)plan.BitReverse[(plan.Half - k) & mask] * stride;
        TVec ar = TLanes.Load(a), ai = TLanes.Load(a + lanes);
        TVec br = TLanes.Load(b), bi = TLanes.Load(b + lanes);
        TVec c = TLanes.Broadcast(plan.SplitTwiddles[2 * k]), s = TLanes.Broadcast(plan.SplitTwiddles[2 * k + 1]);
        TVec sumR = TLanes.Add(ar, br), difI = TLanes.Sub(ai, bi);
        TVec dr = TLanes.Sub(ar, br), di = TLanes.Add(ai, bi);
        TVec p = TLanes.MulAdd(c, di, TLanes.Mul(s, dr));
        TVec q = TLanes.Sub(TLanes.Mul(s, di), TLanes.Mul(c, dr));
        return new(TLanes.Add(sumR, p), TLanes.Add(difI, q), TLanes.Sub(sumR, p), TLanes.Sub(q, difI), c, s);
    }

    /// <summary>|re + i·im| / 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec HalfMagnitude<TLanes, TVec>(TVec re, TVec im, TVec half)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged =>
        TLanes.Mul(half, TLanes.Sqrt(TLanes.MulAdd(re, re, TLanes.Mul(im, im))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreBin<TLanes, TVec>(TVec magnitude, float* row, int validLanes, float* tail)
        where TLanes : struct, ILanes<TVec> where TVec : unmanaged
    {
        if (validLanes == TLanes.Count)
        {
            TLanes.Store(row, magnitude);
            return;
        }
        TLanes.Store(tail, magnitude);
        for (int lane = 0; lane < validLanes; lane++) row[lane] = tail[lane];
    }

    /// <summary>Scalar part of <see cref="ILanes{TVec}.LoadWindowedFrames"/>: samples [from, length) of each lane.</summary>
    private static void LoadWindowedSamples(float* first, int hop, float* window, int from, int length,
        float* destination, int lanes)
    {
        for (int t = from; t < length; t++)
            for (int lane = 0; lane < lanes; lane++)
                destination[t * lanes + lane] = window[t] * first[lane * hop + t];
    }

    /// <summary>Float SIMD operations at one vector width; the kernel is written once against this.</summary>
    public interface ILanes<TVec> where TVec : unmanaged
    {
        static abstract int Count { get; }
        static abstract TVec Load(float* source);
        /// <summary>
        /// Windowed frames as lanes: destination[t·Count + l] = window[t] · first[l·hop + t] for t &lt; length, i.e.
        /// the block buffer layout (sample 2n is Re z[n], 2n+1 is Im z[n]) of Count frames <paramref name="hop"/> apart.
        /// </summary>
        static abstract void LoadWindowedFrames(float* first, int hop, float* window, int length, float* destination);
        static abstract void Store(float* destination, TVec value);
        static abstract TVec Broadcast(float value);
        static abstract TVec Add(TVec a, TVec b);
        static abstract TVec Sub(TVec a, TVec b);
        static abstract TVec Mul(TVec a, TVec b);
        /// <summary>a·b + c, fused where the hardware can.</summary>
        static abstract TVec MulAdd(TVec a, TVec b, TVec c);
        static abstract TVec Sqrt(TVec a);
        /// <summary>a / b where b &gt; 0, else 0.</summary>
        static abstract TVec DivideOrZero(TVec a, TVec b);
    }

    public readonly struct Lanes512 : ILanes<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;
        public static Vector512<float> Load(float* source) => Vector512.Load(source);
        public static void LoadWindowedFrames(float* first, int hop, float* window, int length, float* destination)
        {
            int t = 0;
            if (Avx.IsSupported)
            {
                // Two 8x8 transposes (frames 0-7 and 8-15) give samples t..t+7 of all 16 frames.
                var low = stackalloc Vector256<float>[8];
                var high = stackalloc Vector256<float>[8];
                for (; t + 8 <= length; t += 8)
                {
                    var w = Vector256.Load(window + t);
                    Lanes256.TransposeWindowed(first + t, hop, w, low);
                    Lanes256.TransposeWindowed(first + t + 8 * hop, hop, w, high);
                    for (int j = 0; j < 8; j++)
                        Vector512.Create(low[j], high[j]).Store(destination + (t + j) * 16);
                }
            }
            LoadWindowedSamples(first, hop, window, t, length, destination, 16);
        }
        public static void Store(float* destination, Vector512<float> value) => value.Store(destination);
        public static Vector512<float> Broadcast(float value) => Vector512.Create(value);
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
        public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
        public static Vector512<float> MulAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
        public static Vector512<float> Sqrt(Vector512<float> a) => Vector512.Sqrt(a);
        public static Vector512<float> DivideOrZero(Vector512<float> a, Vector512<float> b) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(b, Vector512<float>.Zero), a / b, Vector512<float>.Zero);
    }

    public readonly struct Lanes256 : ILanes<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;
        public static Vector256<float> Load(float* source) => Vector256.Load(source);
        public static void LoadWindowedFrames(float* first, int hop, float* window, int length, float* destination)
        {
            int t = 0;
            if (Avx.IsSupported)
            {
                var columns = stackalloc Vector256<float>[8];
                for (; t + 8 <= length; t += 8)
                {
                    TransposeWindowed(first + t, hop, Vector256.Load(window + t), columns);
                    for (int j = 0; j < 8; j++) columns[j].Store(destination + (t + j) * 8);
                }
            }
            LoadWindowedSamples(first, hop, window, t, length, destination, 8);
        }

        /// <summary>columns[j][l] = window[j] · rows[l·rowStride + j] for j, l &lt; 8 (AVX unpack/shuffle/permute).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static void TransposeWindowed(float* rows, int rowStride, Vector256<float> window, Vector256<float>* columns)
        {
            var r0 = Vector256.Load(rows) * window;
            var r1 = Vector256.Load(rows + rowStride) * window;
            var r2 = Vector256.Load(rows + 2 * rowStride) * window;
            var r3 = Vector256.Load(rows + 3 * rowStride) * window;
            var r4 = Vector256.Load(rows + 4 * rowStride) * window;
            var r5 = Vector256.Load(rows + 5 * rowStride) * window;
            var r6 = Vector256.Load(rows + 6 * rowStride) * window;
            var r7 = Vector256.Load(rows + 7 * rowStride) * window;
            // Pairs of rows interleaved: (r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]) and so on.
            var a0 = Avx.UnpackLow(r0, r1); var a1 = Avx.UnpackHigh(r0, r1);
            var a2 = Avx.UnpackLow(r2, r3); var a3 = Avx.UnpackHigh(r2, r3);
            var a4 = Avx.UnpackLow(r4, r5); var a5 = Avx.UnpackHigh(r4, r5);
            var a6 = Avx.UnpackLow(r6, r7); var a7 = Avx.UnpackHigh(r6, r7);
            // Four rows per column within each 128-bit half: (r0..3[j] | r0..3[j+4]).
            var b0 = Avx.Shuffle(a0, a2, 0x44); var b1 = Avx.Shuffle(a0, a2, 0xEE);
            var b2 = Avx.Shuffle(a1, a3, 0x44); var b3 = Avx.Shuffle(a1, a3, 0xEE);
            var b4 = Avx.Shuffle(a4, a6, 0x44); var b5 = Avx.Shuffle(a4, a6, 0xEE);
            var b6 = Avx.Shuffle(a5, a7, 0x44); var b7 = Avx.Shuffle(a5, a7, 0xEE);
            // Join rows 0-3 and 4-7 of the same half.
            columns[0] = Avx.Permute2x128(b0, b4, 0x20); columns[4] = Avx.Permute2x128(b0, b4, 0x31);
            columns[1] = Avx.Permute2x128(b1, b5, 0x20); columns[5] = Avx.Permute2x128(b1, b5, 0x31);
            columns[2] = Avx.Permute2x128(b2, b6, 0x20); columns[6] = Avx.Permute2x128(b2, b6, 0x31);
            columns[3] = Avx.Permute2x128(b3, b7, 0x20); columns[7] = Avx.Permute2x128(b3, b7, 0x31);
        }
        public static void Store(float* destination, Vector256<float> value) => value.Store(destination);
        public static Vector256<float> Broadcast(float value) => Vector256.Create(value);
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
        public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
        public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
        public static Vector256<float> Sqrt(Vector256<float> a) => Vector256.Sqrt(a);
        public static Vector256<float> DivideOrZero(Vector256<float> a, Vector256<float> b) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(b, Vector256<float>.Zero), a / b, Vector256<float>.Zero);
    }

    public readonly struct Lanes128 : ILanes<Vector128<float>>
    {
        public static int Count => Vector128<float>.Count;
        public static Vector128<float> Load(float* source) => Vector128.Load(source);
        public static void LoadWindowedFrames(float* first, int hop, float* window, int length, float* destination)
        {
            int t = 0;
            if (Sse.IsSupported)
            {
                for (; t + 4 <= length; t += 4)
                {
                    var w = Vector128.Load(window + t);
                    var r0 = Vector128.Load(first + t) * w;
                    var r1 = Vector128.Load(first + hop + t) * w;
                    var r2 = Vector128.Load(first + 2 * hop + t) * w;
                    var r3 = Vector128.Load(first + 3 * hop + t) * w;
                    var a0 = Sse.UnpackLow(r0, r1); var a1 = Sse.UnpackHigh(r0, r1);
                    var a2 = Sse.UnpackLow(r2, r3); var a3 = Sse.UnpackHigh(r2, r3);
                    float* d = destination + t * 4;
                    Sse.MoveLowToHigh(a0, a2).Store(d);
                    Sse.MoveHighToLow(a2, a0).Store(d + 4);
                    Sse.MoveLowToHigh(a1, a3).Store(d + 8);
                    Sse.MoveHighToLow(a3, a1).Store(d + 12);
                }
            }
            LoadWindowedSamples(first, hop, window, t, length, destination, 4);
        }
        public static void Store(float* destination, Vector128<float> value) => value.Store(destination);
        public static Vector128<float> Broadcast(float value) => Vector128.Create(value);
        public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
        public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
        public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
        public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
        public static Vector128<float> Sqrt(Vector128<float> a) => Vector128.Sqrt(a);
        public static Vector128<float> DivideOrZero(Vector128<float> a, Vector128<float> b) =>
            Vector128.ConditionalSelect(Vector128.GreaterThan(b, Vector128<float>.Zero), a / b, Vector128<float>.Zero);
    }

    public readonly struct LanesScalar : ILanes<float>
    {
        public static int Count => 1;
        public static float Load(float* source) => *source;
        public static void LoadWindowedFrames(float* first, int hop, float* window, int length, float* destination) =>
            LoadWindowedSamples(first, hop, window, 0, length, destination, 1);
        public static void Store(float* destination, float value) => *destination = value;
        public static float Broadcast(float value) => value;
        public static float Add(float a, float b) => a + b;
        public static float Sub(float a, float b) => a - b;
        public static float Mul(float a, float b) => a * b;
        public static float MulAdd(float a, float b, float c) => float.MultiplyAddEstimate(a, b, c);
        public static float Sqrt(float a) => MathF.Sqrt(a);
        public static float DivideOrZero(float a, float b) => b > 0 ? a / b : 0f;
    }
}
