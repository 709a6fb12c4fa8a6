using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<AttentionOp>, IKernelWorkspace<AttentionOp>
{
    /// <summary>Per-worker tile scratch: packed queries, scores, output accumulator (and f32 K, V tiles for 16-bit inputs).</summary>
    public long WorkspaceBytes(AttentionOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        CpuParallel.Workers * FlashAttention.ScratchFloatsPerWorker(op.HeadDim(inputs), inputs[0].DType) * sizeof(float);

    /// <summary>
    /// Widest SIMD vector, in bits, the attention kernel may use: 512, 256, 128, or anything lower for scalar code.
    /// The widest accelerated width not above it is chosen; tests lower it to cover the narrow paths.
    /// </summary>
    internal int AttentionVectorBitsLimit { get; init; } = 512;

    public unsafe void Execute(AttentionOp op, in KernelArgs args)
    {
        var q = args.Input(0);
        var k = args.Input(1);
        int channels = q.Dim(2);
        int headDim = channels / op.Heads;
        var problem = new FlashAttention.Problem
        {
            Q = q.Ptr<byte>(),
            K = k.Ptr<byte>(),
            V = args.Input(2).Ptr<byte>(),
            KeyMask = args.InputCount == 4 ? args.Input(3).Ptr<int>() : null,
            Out = args.Output.Ptr<byte>(),
            Element = q.DType,
            Batch = q.Dim(0),
            Queries = q.Dim(1),
            Keys = k.Dim(1),
            Heads = op.Heads,
            HeadDim = headDim,
            Channels = channels,
            ScoreScale = op.ScaleFor(headDim) * MathF.Log2(MathF.E),
        };
        FlashAttention.Run(problem, args.Workspace.Ptr<float>(), AttentionVectorBitsLimit);
    }
}

/// <summary>
/// Flash attention on the CPU. Work items are (batch, head, tile of <see cref="QueryTile"/> queries); each worker
/// streams the keys in tiles of <see cref="KeyTile"/>, keeping a running max and sum per query (online softmax), so
/// memory stays O(tile) whatever N and M are.
/// <para>
/// Queries sit in SIMD lanes throughout: the query tile is packed transposed (Qᵀ [D][lanes], pre-scaled by
/// scale·log2 e so scores are base-2 exponents), scores are held as Sᵀ [key][lanes] and the output accumulator as
/// Oᵀ [D][lanes]. Both products are then "broadcast one K or V element, FMA against a vector of queries", the row
/// max/sum of the softmax are plain vertical vector ops, and K and V are read in place with no packing. Any D
/// works; only the last query tile is padded (to two vectors).
/// </para>
/// <para>
/// F16 and BF16 inputs are converted to f32 a tile at a time (queries when packed, each key tile's K and V rows into
/// per-worker scratch), everything after runs in f32 as for F32 inputs, and the output rows are rounded to the input
/// type when written.
/// </para>
/// </summary>
internal static unsafe class FlashAttention
{
    /// <summary>Queries per work item (lanes of the packed tiles).</summary>
    public const int QueryTile = 64;

    /// <summary>Keys per online-softmax step.</summary>
    public const int KeyTile = 64;

    /// <summary>Rows (keys for Q·Kᵀ, head channels for P·V) per register block; each row spans two vectors.</summary>
    private const int RowBlock = 4;

    /// <summary>
    /// Floats of one worker's scratch: Qᵀ and Oᵀ [D][QueryTile], Sᵀ [KeyTile][QueryTile], max, sum, rescale, and for
    /// 16-bit inputs the key tile's K and V rows in f32 [KeyTile][D].
    /// </summary>
    public static long ScratchFloatsPerWorker(int headDim, DType element) =>
        (2L * headDim + KeyTile + 3) * QueryTile + (element == DType.F32 ? 0 : 2L * KeyTile * headDim);

    /// <summary>
    /// Pointers and sizes of one attention call; q, k, v and out hold <see cref="Element"/> values (F32, F16 or BF16)
    /// in rows <see cref="Channels"/> elements apart.
    /// </summary>
    public struct Problem
    {
        public byte* Q, K, V, Out;
        public DType Element;
        /// <summary>[Batch, Keys] (0 = masked) or null.</summary>
        public int* KeyMask;
        public int Batch, Queries, Keys, Heads, HeadDim, Channels;
        /// <summary>scale · log2(e): scores come out as base-2 exponents.</summary>
        public float ScoreScale;
    }

    public static void Run(in Problem problem, float* workspace, int vectorBitsLimit)
    {
        if (vectorBitsLimit >= 512 && Vector512.IsHardwareAccelerated)
            Run<Vector512<float>, Simd512>(problem, workspace);
        else if (vectorBitsLimit >= 256 && Vector256.IsHardwareAccelerated)
            Run<Vector256<float>, Simd256>(problem, workspace);
        else if (vectorBitsLimit >= 128 && Vector128.IsHardwareAccelerated)
            Run<Vector128<float>, Simd128>(problem, workspace);
        else
            Run<float, SimdScalar>(problem, workspace);
    }

    private static void Run<TV, TS>(Problem p, float* workspace) where TV : unmanaged where TS : ISimd<TV>
    {
        int tilesPerHead = (p.Queries + QueryTile - 1) / QueryTile;
        long items = (long)p.Batch * p.Heads * tilesPerHead;
        if (items == 0) return;
        long scratchFloats = ScratchFloatsPerWorker(p.HeadDim, p.Element);
        long next = 0;
        // One range per worker, so the range start is a private scratch slot; items are handed out dynamically
        // because the last query tile of each head is short.
        CpuParallel.For(Math.Min(CpuParallel.Workers, items), 1, (slot, _) =>
        {
            float* scratch = workspace + slot * scratchFloats;
            long item;
            while ((item = Interlocked.Increment(ref next) - 1) < items)
            {
                long headIndex = item / tilesPerHead;
                ComputeTile<TV, TS>(p, scratch, (int)(headIndex / p.Heads), (int)(headIndex % p.Heads),
                    (int)(item % tilesPerHead) * QueryTile);
            }
        });
    }

    /// <summary>Output rows [firstQuery, firstQuery + QueryTile) of one (batch, head).</summary>
    private static void ComputeTile<TV, TS>(in Problem p, float* scratch, int batch, int head, int firstQuery)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int d = p.HeadDim;
        int queries = Math.Min(QueryTile, p.Queries - firstQuery);
        int group = 2 * TS.Width;
        int lanes = (queries + group - 1) / group * group;
        float* qt = scratch;
        float* ot = qt + (long)d * QueryTile;
        float* scores = ot + (long)d * QueryTile;
        float* rowMax = scores + KeyTile * QueryTile;
        float* rowSum = rowMax + QueryTile;
        float* rescale = rowSum + QueryTile;
        float* keyTile = rescale + QueryTile; // f32 K and V rows of a 16-bit key tile
        float* valueTile = keyTile + (long)KeyTile * d;

        long headOffset = (long)head * d;
        long qRows = ((long)batch * p.Queries + firstQuery) * p.Channels + headOffset;
        for (int i = 0; i < lanes; i++)
        {
            long row = qRows + (long)i * p.Channels;
            for (int c = 0; c < d; c++)
            {
                qt[c * QueryTile + i] = i < queries ? Load(p.Q, row + c, p.Element) * p.ScoreScale : 0f;
                ot[c * QueryTile + i] = 0f;
            }
            rowMax[i] = float.NegativeInfinity;
            rowSum[i] = 0f;
        }

        long keyRows = (long)batch * p.Keys * p.Channels + headOffset;
        int* mask = p.KeyMask == null ? null : p.KeyMask + (long)batch * p.Keys;
        for (int firstKey = 0; firstKey < p.Keys; firstKey += KeyTile)
        {
            int count = Math.Min(KeyTile, p.Keys - firstKey);
            // A tile of padding keys leaves max, sum and output unchanged (text padding often fills a whole tile).
            if (mask != null && !new ReadOnlySpan<int>(mask + firstKey, count).ContainsAnyExcept(0))
                continue;
            long offset = keyRows + (long)firstKey * p.Channels;
            float* keys = KeyValueRows(p, p.K, offset, count, keyTile, out long keyStride);
            float* values = KeyValueRows(p, p.V, offset, count, valueTile, out long valueStride);
            Scores<TV, TS>(keys, keyStride, count, qt, d, scores, lanes);
            if (mask != null)
                for (int j = 0; j < count; j++)
                    if (mask[firstKey + j] == 0)
                        new Span<float>(scores + j * QueryTile, lanes).Fill(float.NegativeInfinity);
            UpdateSoftmax<TV, TS>(scores, count, lanes, rowMax, rowSum, rescale);
            Accumulate<TV, TS>(values, valueStride, count, scores, d, ot, lanes, rescale);
        }

        // Normalise by the softmax sum; rows that saw no unmasked key have sum 0 and are defined as zeros.
        for (int i = 0; i < lanes; i += TS.Width)
        {
            TV sum = TS.Load(rowSum + i);
            TS.Store(rescale + i, TS.ZeroWhereNotPositive(sum, TS.Div(TS.Splat(1f), sum)));
        }
        for (int i = 0; i < queries; i++)
        {
            long row = qRows + (long)i * p.Channels;
            float inverse = rescale[i];
            for (int c = 0; c < d; c++) Store(p.Out, row + c, ot[c * QueryTile + i] * inverse, p.Element);
        }
    }

    /// <summary>
    /// <paramref name="count"/> rows of K or V from element <paramref name="offset"/> on, as f32 rows
    /// <paramref name="stride"/> apart: read in place for F32 inputs, else converted into <paramref name="scratch"/>
    /// ([count][D]).
    /// </summary>
    private static float* KeyValueRows(in Problem p, byte* source, long offset, int count, float* scratch, out long stride)
    {
        stride = p.Element == DType.F32 ? p.Channels : p.HeadDim;
        if (p.Element == DType.F32) return (float*)source + offset;
        for (int j = 0; j < count; j++)
        {
            long row = offset + (long)j * p.Channels;
            float* converted = scratch + (long)j * p.HeadDim;
            for (int c = 0; c < p.HeadDim; c++) converted[c] = Load(source, row + c, p.Element);
        }
        return scratch;
    }

    /// <summary>Element <paramref name="index"/> of an F32, F16 or BF16 array as f32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Load(byte* data, long index, DType element) => element switch
    {
        DType.F32 => ((float*)data)[index],
        DType.F16 => (float)((Half*)data)[index],
        _ => FloatConversions.BFloat16ToSingle(((ushort*)data)[index]),
    };

    /// <summary>Writes <paramref name="value"/> rounded to nearest even into an F32, F16 or BF16 array.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(byte* data, long index, float value, DType element)
    {
        switch (element)
        {
            case DType.F32: ((float*)data)[index] = value; break;
            case DType.F16: ((Half*)data)[index] = (Half)value; break;
            default: ((ushort*)data)[index] = FloatConversions.SingleToBFloat16(value); break;
        }
    }

    /// <summary>Sᵀ[j][lanes] = Σ_c K[j][c] · Qᵀ[c][lanes] for keys j &lt; <paramref name="count"/>.</summary>
    private static void Scores<TV, TS>(float* keys, long keyStride, int count, float* qt, int d, float* scores, int lanes)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int group = 2 * TS.Width;
        int j = 0;
        for (; j + RowBlock <= count; j += RowBlock)
            for (int g = 0; g < lanes; g += group)
                ScoresBlock4<TV, TS>(keys + j * keyStride, keyStride, qt + g, d, scores + j * QueryTile + g);
        for (; j < count; j++)
            for (int g = 0; g < lanes; g += group)
                ScoresBlock1<TV, TS>(keys + j * keyStride, qt + g, d, scores + j * QueryTile + g);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresBlock4<TV, TS>(float* k0, long keyStride, float* qt, int d, float* s)
        where TV : unmanaged where TS : ISimd<TV>
    {
        float* k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride;
        TV a00 = TS.Splat(0f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int c = 0; c < d; c++, qt += QueryTile)
        {
            TV b0 = TS.Load(qt), b1 = TS.Load(qt + TS.Width);
            TV x = TS.Splat(k0[c]);
            a00 = TS.MulAdd(x, b0, a00); a01 = TS.MulAdd(x, b1, a01);
            x = TS.Splat(k1[c]);
            a10 = TS.MulAdd(x, b0, a10); a11 = TS.MulAdd(x, b1, a11);
            x = TS.Splat(k2[c]);
            a20 = TS.MulAdd(x, b0, a20); a21 = TS.MulAdd(x, b1, a21);
            x = TS.Splat(k3[c]);
            a30 = TS.MulAdd(x, b0, a30); a31 = TS.MulAdd(x, b1, a31);
        }
        TS.Store(s, a00); TS.Store(s + TS.Width, a01);
        s += QueryTile;
        TS.Store(s, a10); TS.Store(s + TS.Width, a11);
        s += QueryTile;
        TS.Store(s, a20); TS.Store(s + TS.Width, a21);
        s += QueryTile;
        TS.Store(s, a30); TS.Store(s + TS.Width, a31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresBlock1<TV, TS>(float* k0, float* qt, int d, float* s)
        where TV : unmanaged where TS : ISimd<TV>
    {
        TV a0 = TS.Splat(0f), a1 = a0;
        for (int c = 0; c < d; c++, qt += QueryTile)
        {
            TV x = TS.Splat(k0[c]);
            a0 = TS.MulAdd(x, TS.Load(qt), a0);
            a1 = TS.MulAdd(x, TS.Load(qt + TS.Width), a1);
        }
        TS.Store(s, a0); TS.Store(s + TS.Width, a1);
    }

    /// <summary>
    /// Online softmax step: folds this key tile's scores into the running max and sum of each query lane, turns
    /// the scores into weights 2^(s - max) in place and leaves in <paramref name="rescale"/> the factor
    /// 2^(oldMax - newMax) that the accumulated output must be multiplied by.
    /// </summary>
    private static void UpdateSoftmax<TV, TS>(float* scores, int count, int lanes, float* rowMax, float* rowSum, float* rescale)
        where TV : unmanaged where TS : ISimd<TV>
    {
        for (int i = 0; i < lanes; i += TS.Width)
        {
            float* column = scores + i;
            TV oldMax = TS.Load(rowMax + i);
            TV max = oldMax;
            for (int j = 0; j < count; j++) max = TS.Max(max, TS.Load(column + j * QueryTile));
            // While every key so far is masked the max is -inf; subtracting 0 instead keeps the weights 0, not NaN.
            TV shift = TS.ZeroWhereNegativeInfinity(max);
            TV factor = Exp2<TV, TS>(TS.Sub(oldMax, shift));
            TV sum = TS.Splat(0f);
            for (int j = 0; j < count; j++)
            {
                TV weight = Exp2<TV, TS>(TS.Sub(TS.Load(column + j * QueryTile), shift));
                TS.Store(column + j * QueryTile, weight);
                sum = TS.Add(sum, weight);
            }
            TS.Store(rescale + i, factor);
            TS.Store(rowSum + i, TS.MulAdd(TS.Load(rowSum + i), factor, sum));
            TS.Store(rowMax + i, max);
        }
    }

    /// <summary>Oᵀ[c][lanes] = Oᵀ[c][lanes] · rescale + Σ_j V[j][c] · Pᵀ[j][lanes] over the key tile.</summary>
    private static void Accumulate<TV, TS>(float* values, long valueStride, int count, float* weights, int d, float* ot,
        int lanes, float* rescale) where TV : unmanaged where TS : ISimd<TV>
    {
        int group = 2 * TS.Width;
        for (int g = 0; g < lanes; g += group)
        {
            TV r0 = TS.Load(rescale + g), r1 = TS.Load(rescale + g + TS.Width);
            int c = 0;
            for (; c + RowBlock <= d; c += RowBlock)
                AccumulateBlock4<TV, TS>(values + c, valueStride, count, weights + g, ot + c * QueryTile + g, r0, r1);
            for (; c < d; c++)
                AccumulateBlock1<TV, TS>(values + c, valueStride, count, weights + g, ot + c * QueryTile + g, r0, r1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateBlock4<TV, TS>(float* v, long valueStride, int count, float* w, float* o, TV r0, TV r1)
        where TV : unmanaged where TS : ISimd<TV>
    {
        float* o1 = o + QueryTile, o2 = o1 + QueryTile, o3 = o2 + QueryTile;
        TV a00 = TS.Mul(TS.Load(o), r0), a01 = TS.Mul(TS.Load(o + TS.Width), r1);
        TV a10 = TS.Mul(TS.Load(o1), r0), a11 = TS.Mul(TS.Load(o1 + TS.Width), r1);
        TV a20 = TS.Mul(TS.Load(o2), r0), a21 = TS.Mul(TS.Load(o2 + TS.Width), r1);
        TV a30 = TS.Mul(TS.Load(o3), r0), a31 = TS.Mul(TS.Load(o3 + TS.Width), r1);
        for (int j = 0; j < count; j++, w += QueryTile, v += valueStride)
        {
            TV b0 = TS.Load(w), b1 = TS.Load(w + TS.Width);
            TV x = TS.Splat(v[0]);
            a00 = TS.MulAdd(x, b0, a00); a01 = TS.MulAdd(x, b1, a01);
            x = TS.Splat(v[1]);
            a10 = TS.MulAdd(x, b0, a10); a11 = TS.MulAdd(x, b1, a11);
            x = TS.Splat(v[2]);
            a20 = TS.MulAdd(x, b0, a20); a21 = TS.MulAdd(x, b1, a21);
            x = TS.Splat(v[3]);
            a30 = TS.MulAdd(x, b0, a30); a31 = TS.MulAdd(x, b1, a31);
        }
        TS.Store(o, a00); TS.Store(o + TS.Width, a01);
        TS.Store(o1, a10); TS.Store(o1 + TS.Width, a11);
        TS.Store(o2, a20); TS.Store(o2 + TS.Width, a21);
        TS.Store(o3, a30); TS.Store(o3 + TS.Width, a31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateBlock1<TV, TS>(float* v, long valueStride, int count, float* w, float* o, TV r0, TV r1)
        where TV : unmanaged where TS : ISimd<TV>
    {
        TV a0 = TS.Mul(TS.Load(o), r0), a1 = TS.Mul(TS.Load(o + TS.Width), r1);
        for (int j = 0; j < count; j++, w += QueryTile, v += valueStride)
        {
            TV x = TS.Splat(v[0]);
            a0 = TS.MulAdd(x, TS.Load(w), a0);
            a1 = TS.MulAdd(x, TS.Load(w + TS.Width), a1);
        }
        TS.Store(o, a0); TS.Store(o + TS.Width, a1);
    }

    /// <summary>1.5·2^23: adding it rounds a float in [-2^22, 2^22] to an integer held in the low mantissa bits.</summary>
    private const float RoundingShift = 12582912f;

    /// <summary>
    /// 2^x for x ≤ 0 (relative error ~2e-7): x = n + f with integer n and |f| ≤ 1/2, 2^f from Cephes' exp2f
    /// polynomial, 2^n built in the exponent bits. Inputs below -127 (including -inf) give exactly 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TV Exp2<TV, TS>(TV x) where TV : unmanaged where TS : ISimd<TV>
    {
        x = TS.Max(x, TS.Splat(-127f));
        TV shifted = TS.Add(x, TS.Splat(RoundingShift));
        TV f = TS.Sub(x, TS.Sub(shifted, TS.Splat(RoundingShift)));
        TV p = TS.MulAdd(TS.Splat(1.535336188319500e-4f), f, TS.Splat(1.339887440266574e-3f));
        p = TS.MulAdd(p, f, TS.Splat(9.618437357674640e-3f));
        p = TS.MulAdd(p, f, TS.Splat(5.550332471162809e-2f));
        p = TS.MulAdd(p, f, TS.Splat(2.402264791363012e-1f));
        p = TS.MulAdd(p, f, TS.Splat(6.931472028550421e-1f));
        p = TS.MulAdd(p, f, TS.Splat(1f));
        return TS.Mul(p, TS.PowerOfTwo(shifted));
    }

    /// <summary>The few vector operations the kernels need, for one SIMD width (TensorPrimitives-style operator structs).</summary>
    internal interface ISimd<TV> where TV : unmanaged
    {
        static abstract int Width { get; }
        static abstract TV Load(float* p);
        static abstract void Store(float* p, TV v);
        static abstract TV Splat(float x);
        static abstract TV Add(TV a, TV b);
        static abstract TV Sub(TV a, TV b);
        static abstract TV Mul(TV a, TV b);
        static abstract TV Div(TV a, TV b);
        /// <summary>a·b + c, fused where the hardware has FMA.</summary>
        static abstract TV MulAdd(TV a, TV b, TV c);
        /// <summary>Lane-wise max; NaN handling is the hardware's (inputs are never NaN here unless q/k are).</summary>
        static abstract TV Max(TV a, TV b);
        static abstract TV ZeroWhereNegativeInfinity(TV x);
        /// <summary><paramref name="value"/> where <paramref name="test"/> &gt; 0, else 0.</summary>
        static abstract TV ZeroWhereNotPositive(TV test, TV value);
        /// <summary>2^n from x + <see cref="RoundingShift"/> holding integer n ∈ [-127, 0]; n = -127 gives 0.</summary>
        static abstract TV PowerOfTwo(TV shifted);
    }

    /// <summary>Bits of <see cref="RoundingShift"/> minus the exponent bias: subtracting it from the bits of x + RoundingShift gives n + 127.</summary>
    private const int BiasedShiftBits = 0x4B400000 - 127;

    private readonly struct Simd512 : ISimd<Vector512<float>>
    {
        public static int Width => Vector512<float>.Count;
        public static Vector512<float> Load(float* p) => Vector512.Load(p);
        public static void Store(float* p, Vector512<float> v) => v.Store(p);
        public static Vector512<float> Splat(float x) => Vector512.Create(x);
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        public static Vector512<float> Sub(Vector512<float> a, Vector512<float> b) => a - b;
        public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
        public static Vector512<float> Div(Vector512<float> a, Vector512<float> b) => a / b;
        public static Vector512<float> MulAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
        public static Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.MaxNative(a, b);
        public static Vector512<float> ZeroWhereNegativeInfinity(Vector512<float> x) =>
            Vector512.AndNot(x, Vector512.Equals(x, Vector512.Create(float.NegativeInfinity)));
        public static Vector512<float> ZeroWhereNotPositive(Vector512<float> test, Vector512<float> value) =>
            value & Vector512.GreaterThan(test, Vector512<float>.Zero);
        public static Vector512<float> PowerOfTwo(Vector512<float> shifted) =>
            Vector512.ShiftLeft(shifted.AsInt32() - Vector512.Create(BiasedShiftBits), 23).AsSingle();
    }

    private readonly struct Simd256 : ISimd<Vector256<float>>
    {
        public static int Width => Vector256<float>.Count;
        public static Vector256<float> Load(float* p) => Vector256.Load(p);
        public static void Store(float* p, Vector256<float> v) => v.Store(p);
        public static Vector256<float> Splat(float x) => Vector256.Create(x);
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        public static Vector256<float> Sub(Vector256<float> a, Vector256<float> b) => a - b;
        public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
        public static Vector256<float> Div(Vector256<float> a, Vector256<float> b) => a / b;
        public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
        public static Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);
        public static Vector256<float> ZeroWhereNegativeInfinity(Vector256<float> x) =>
            Vector256.AndNot(x, Vector256.Equals(x, Vector256.Create(float.NegativeInfinity)));
        public static Vector256<float> ZeroWhereNotPositive(Vector256<float> test, Vector256<float> value) =>
            value & Vector256.GreaterThan(test, Vector256<float>.Zero);
        public static Vector256<float> PowerOfTwo(Vector256<float> shifted) =>
            Vector256.ShiftLeft(shifted.AsInt32() - Vector256.Create(BiasedShiftBits), 23).AsSingle();
    }

    private readonly struct Simd128 : ISimd<Vector128<float>>
    {
        public static int Width => Vector128<float>.Count;
        public static Vector128<float> Load(float* p) => Vector128.Load(p);
        public static void Store(float* p, Vector128<float> v) => v.Store(p);
        public static Vector128<float> Splat(float x) => Vector128.Create(x);
        public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
        public static Vector128<float> Sub(Vector128<float> a, Vector128<float> b) => a - b;
        public static Vector128<float> Mul(Vector128<float> a, Vector128<float> b) => a * b;
        public static Vector128<float> Div(Vector128<float> a, Vector128<float> b) => a / b;
        public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
        public static Vector128<float> Max(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);
        public static Vector128<float> ZeroWhereNegativeInfinity(Vector128<float> x) =>
            Vector128.AndNot(x, Vector128.Equals(x, Vector128.Create(float.NegativeInfinity)));
        public static Vector128<float> ZeroWhereNotPositive(Vector128<float> test, Vector128<float> value) =>
            value & Vector128.GreaterThan(test, Vector128<float>.Zero);
        public static Vector128<float> PowerOfTwo(Vector128<float> shifted) =>
            Vector128.ShiftLeft(shifted.AsInt32() - Vector128.Create(BiasedShiftBits), 23).AsSingle();
    }

    private readonly struct SimdScalar : ISimd<float>
    {
        public static int Width => 1;
        public static float Load(float* p) => *p;
        public static void Store(float* p, float v) => *p = v;
        public static float Splat(float x) => x;
        public static float Add(float a, float b) => a + b;
        public static float Sub(float a, float b) => a - b;
        public static float Mul(float a, float b) => a * b;
        public static float Div(float a, float b) => a / b;
        public static float MulAdd(float a, float b, float c) => float.MultiplyAddEstimate(a, b, c);
        public static float Max(float a, float b) => a > b ? a : b;
        public static float ZeroWhereNegativeInfinity(float x) => float.IsNegativeInfinity(x) ? 0f : x;
        public static float ZeroWhereNotPositive(float test, float value) => test > 0f ? value : 0f;
        public static float PowerOfTwo(float shifted) =>
            BitConverter.Int32BitsToSingle((BitConverter.SingleToInt32Bits(shifted) - BiasedShiftBits) << 23);
    }
}
