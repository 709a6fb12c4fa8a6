using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<AttentionOp>, IKernelWorkspace<AttentionOp>
{
    /// <summary>Per-worker tile scratch: packed queries, scores, output accumulator (and f32 rows for 16-bit inputs).</summary>
    public long WorkspaceBytes(AttentionOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        CpuParallel.Workers * FlashAttention.ScratchFloatsPerWorker(op.HeadDim(inputs), inputs[0].DType) * sizeof(float);

    /// <summary>
    /// Widest SIMD vector, in bits, the attention kernel may use: 512, 256, 128, or anything lower for scalar code.
    /// The widest accelerated width not above it is chosen; tests lower it to cover the narrow paths.
    /// </summary>
    internal int AttentionVectorBitsLimit { get; init; } = 512;

    public unsafe void Execute(AttentionOp op, in KernelArgs args)
    {
        var problem = AttentionProblem(op, args, maskInput: 3);
        problem.Out = args.Output.Ptr<byte>();
        FlashAttention.Run(problem, args.Workspace.Ptr<float>(), AttentionVectorBitsLimit);
    }

    /// <summary>The sizes, element type and the q, k, v and mask pointers of an attention call, forward or backward.</summary>
    private static unsafe FlashAttention.Problem AttentionProblem(AttentionOp op, in KernelArgs args, int maskInput)
    {
        var q = args.Input(0);
        var k = args.Input(1);
        int channels = q.Dim(2);
        int headDim = channels / op.Heads;
        return new FlashAttention.Problem
        {
            Q = q.Ptr<byte>(),
            K = k.Ptr<byte>(),
            V = args.Input(2).Ptr<byte>(),
            Element = q.DType,
            KeyMask = args.InputCount > maskInput ? args.Input(maskInput).Ptr<int>() : null,
            Batch = q.Dim(0),
            Queries = q.Dim(1),
            Keys = k.Dim(1),
            Heads = op.Heads,
            HeadDim = headDim,
            Channels = channels,
            Scale = op.ScaleFor(headDim),
            ScoreScale = op.ScaleFor(headDim) * MathF.Log2(MathF.E),
        };
    }
}

/// <summary>
/// Flash attention on the CPU. Work items are (batch, head, tile of <see cref="LaneTile"/> queries); each worker
/// streams the keys in tiles of <see cref="RowTile"/>, keeping a running max and sum per query (online softmax), so
/// memory stays O(tile) whatever N and M are.
/// <para>
/// Queries sit in SIMD lanes throughout: the query tile is packed transposed (Qᵀ [D][lanes], pre-scaled by
/// scale·log2 e so scores are base-2 exponents), scores are held as Sᵀ [key][lanes] and the output accumulator as
/// Oᵀ [D][lanes]. Both products are then "broadcast one K or V element, FMA against a vector of queries", the row
/// max/sum of the softmax are plain vertical vector ops, and K and V are read in place with no packing. Any D
/// works; only the last query tile is padded (to two vectors). The backward passes (AttentionGradient.cs) reuse the
/// same two products, <see cref="Scores{TV, TS}"/> and <see cref="Accumulate{TV, TS}"/>.
/// </para>
/// <para>
/// The forward also takes F16 and BF16 inputs: their rows are converted to f32 a tile at a time into per-worker scratch
/// (the query tile before packing, each key tile's K and V rows), everything after runs in f32 as for F32 inputs, and
/// the output rows are rounded to the input type when written. The backward passes are F32 only, as their ops require.
/// </para>
/// </summary>
internal static unsafe partial class FlashAttention
{
    /// <summary>Width of a packed tile: the tokens that sit in SIMD lanes (queries here, keys in the key/value gradient).</summary>
    public const int LaneTile = 64;

    /// <summary>Rows of a streamed tile: the tokens read in place, one online-softmax step's worth.</summary>
    public const int RowTile = 64;

    /// <summary>Rows (keys for Q·Kᵀ, head channels for P·V) per register block; each row spans two vectors.</summary>
    private const int RowBlock = 4;

    /// <summary>
    /// Rows of a worker's f32 copy of a 16-bit K or V tile; the K copy also holds the query tile before packing and the
    /// output tile before rounding.
    /// </summary>
    private const int ConvertedRows = RowTile > LaneTile ? RowTile : LaneTile;

    /// <summary>
    /// Floats of one forward worker's scratch: Qᵀ and Oᵀ [D][LaneTile], Sᵀ [RowTile][LaneTile], max, sum, rescale, and
    /// for 16-bit inputs f32 K and V rows [ConvertedRows][D] each.
    /// </summary>
    public static long ScratchFloatsPerWorker(int headDim, DType element) =>
        (2L * headDim + RowTile + 3) * LaneTile + (element == DType.F32 ? 0 : 2L * ConvertedRows * headDim);

    /// <summary>
    /// Pointers and sizes of one attention call; rows of every token-major tensor are <see cref="Channels"/> elements
    /// apart. The backward passes read the forward output from <see cref="Out"/> and fill the gradient fields.
    /// </summary>
    public struct Problem
    {
        /// <summary>q, k, v and the attention output, of <see cref="Element"/> values.</summary>
        public byte* Q, K, V, Out;
        /// <summary>F32, F16 or BF16 in the forward; F32 in the backward passes.</summary>
        public DType Element;
        /// <summary>[Batch, Keys] (0 = masked) or null.</summary>
        public int* KeyMask;
        public int Batch, Queries, Keys, Heads, HeadDim, Channels;
        /// <summary>The multiplier of Q·Kᵀ (the gradients of q and k carry it).</summary>
        public float Scale;
        /// <summary>scale · log2(e): scores come out as base-2 exponents.</summary>
        public float ScoreScale;
        /// <summary>Backward: dy, the gradient of <see cref="Out"/>.</summary>
        public float* OutGradient;
        /// <summary>Backward: dq [Batch, Queries, Channels], dk and dv [Batch, Keys, Channels] (those being computed).</summary>
        public float* QueryGradient, KeyGradient, ValueGradient;
        /// <summary>Key/value gradient: per (batch, head, query) row, [Batch·Heads·Queries] each, filled by its first pass.</summary>
        public float* RowLogSumExp, RowDelta;

        /// <summary><paramref name="tensor"/> (one of q, k, v, out) as floats, for the passes that take F32 only.</summary>
        public readonly float* F32(byte* tensor)
        {
            Debug.Assert(Element == DType.F32, $"attention backward on {Element} inputs");
            return (float*)tensor;
        }
    }

    public static void Run(in Problem problem, float* workspace, int vectorBitsLimit) =>
        Dispatch<ForwardPass>(problem, workspace, vectorBitsLimit);

    /// <summary>A kernel pass written once over <see cref="ISimd{TV}"/> and instantiated per vector width.</summary>
    private interface IPass
    {
        static abstract void Run<TV, TS>(in Problem p, float* workspace) where TV : unmanaged where TS : ISimd<TV>;
    }

    /// <summary>Runs <typeparamref name="TPass"/> with the widest accelerated vector not above <paramref name="vectorBitsLimit"/>.</summary>
    private static void Dispatch<TPass>(in Problem problem, float* workspace, int vectorBitsLimit) where TPass : IPass
    {
        if (vectorBitsLimit >= 512 && Vector512.IsHardwareAccelerated)
            TPass.Run<Vector512<float>, Simd512>(problem, workspace);
        else if (vectorBitsLimit >= 256 && Vector256.IsHardwareAccelerated)
            TPass.Run<Vector256<float>, Simd256>(problem, workspace);
        else if (vectorBitsLimit >= 128 && Vector128.IsHardwareAccelerated)
            TPass.Run<Vector128<float>, Simd128>(problem, workspace);
        else
            TPass.Run<float, SimdScalar>(problem, workspace);
    }

    private delegate void TileBody(float* scratch, int batch, int head, int firstToken);

    /// <summary>
    /// Calls <paramref name="body"/> for every (batch, head, tile of <see cref="LaneTile"/> tokens) of a head with
    /// <paramref name="tokens"/> tokens, giving each worker its own <paramref name="scratchFloats"/> of
    /// <paramref name="workspace"/>.
    /// </summary>
    private static void ForEachTile(in Problem p, int tokens, float* workspace, long scratchFloats, TileBody body)
    {
        int tilesPerHead = (tokens + LaneTile - 1) / LaneTile;
        long items = (long)p.Batch * p.Heads * tilesPerHead;
        if (items == 0) return;
        int heads = p.Heads;
        long next = 0;
        // One range per worker, so the range start is a private scratch slot; items are handed out dynamically
        // because the last tile of each head is short.
        CpuParallel.For(Math.Min(CpuParallel.Workers, items), 1, (slot, _) =>
        {
            float* scratch = workspace + slot * scratchFloats;
            long item;
            while ((item = Interlocked.Increment(ref next) - 1) < items)
            {
                long headIndex = item / tilesPerHead;
                body(scratch, (int)(headIndex / heads), (int)(headIndex % heads), (int)(item % tilesPerHead) * LaneTile);
            }
        });
    }

    private readonly struct ForwardPass : IPass
    {
        public static void Run<TV, TS>(in Problem p, float* workspace) where TV : unmanaged where TS : ISimd<TV>
        {
            var problem = p;
            ForEachTile(p, p.Queries, workspace, ScratchFloatsPerWorker(p.HeadDim, p.Element),
                (scratch, batch, head, firstQuery) => ComputeTile<TV, TS>(problem, scratch, batch, head, firstQuery));
        }
    }

    /// <summary>
    /// Lanes of a tile holding <paramref name="tokens"/> tokens: rounded up to the two-vector groups the register
    /// blocks work on.
    /// </summary>
    private static int PaddedLanes<TV, TS>(int tokens) where TV : unmanaged where TS : ISimd<TV>
    {
        int group = 2 * TS.Width;
        return (tokens + group - 1) / group * group;
    }

    /// <summary>
    /// Packs <paramref name="count"/> rows of <paramref name="d"/> floats, <paramref name="stride"/> apart, transposed
    /// and multiplied by <paramref name="scale"/> into <paramref name="packed"/> [d][LaneTile]; lanes from count to
    /// <paramref name="lanes"/> are zero.
    /// </summary>
    private static void PackTransposed(float* rows, long stride, int count, int lanes, int d, float scale, float* packed)
    {
        for (int i = 0; i < lanes; i++)
        {
            float* row = rows + (long)i * stride;
            for (int c = 0; c < d; c++) packed[c * LaneTile + i] = i < count ? row[c] * scale : 0f;
        }
    }

    /// <summary>Whether the keys [first, first + count) are all masked: such a tile leaves the softmax of every query unchanged.</summary>
    private static bool AllMasked(int* mask, int first, int count) =>
        mask != null && !new ReadOnlySpan<int>(mask + first, count).ContainsAnyExcept(0);

    /// <summary>Sets the score rows of the masked keys among [first, first + count) to -inf (weight 0).</summary>
    private static void MaskScores(int* mask, int first, int count, float* scores, int lanes)
    {
        if (mask == null) return;
        for (int j = 0; j < count; j++)
            if (mask[first + j] == 0)
                new Span<float>(scores + j * LaneTile, lanes).Fill(float.NegativeInfinity);
    }

    /// <summary>Output rows [firstQuery, firstQuery + LaneTile) of one (batch, head).</summary>
    private static void ComputeTile<TV, TS>(in Problem p, float* scratch, int batch, int head, int firstQuery)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int d = p.HeadDim;
        int queries = Math.Min(LaneTile, p.Queries - firstQuery);
        int lanes = PaddedLanes<TV, TS>(queries);
        float* qt = scratch;
        float* ot = qt + (long)d * LaneTile;
        float* scores = ot + (long)d * LaneTile;
        float* rowMax = scores + RowTile * LaneTile;
        float* rowSum = rowMax + LaneTile;
        float* rescale = rowSum + LaneTile;
        float* keyRows = rescale + LaneTile; // 16-bit inputs: f32 K rows, and the query and output tiles
        float* valueRows = keyRows + (long)ConvertedRows * d; // 16-bit inputs: f32 V rows

        long headOffset = (long)head * d;
        long firstRow = ((long)batch * p.Queries + firstQuery) * p.Channels + headOffset;
        float* queryRows = RowsAsF32(p, p.Q, firstRow, queries, keyRows, out long queryStride);
        PackTransposed(queryRows, queryStride, queries, lanes, d, p.ScoreScale, qt);
        new Span<float>(ot, d * LaneTile).Clear();
        new Span<float>(rowMax, lanes).Fill(float.NegativeInfinity);
        new Span<float>(rowSum, lanes).Clear();

        long firstKeyRow = (long)batch * p.Keys * p.Channels + headOffset;
        int* mask = p.KeyMask == null ? null : p.KeyMask + (long)batch * p.Keys;
        for (int firstKey = 0; firstKey < p.Keys; firstKey += RowTile)
        {
            int count = Math.Min(RowTile, p.Keys - firstKey);
            // A tile of padding keys leaves max, sum and output unchanged (text padding often fills a whole tile).
            if (AllMasked(mask, firstKey, count)) continue;
            long offset = firstKeyRow + (long)firstKey * p.Channels;
            float* keys = RowsAsF32(p, p.K, offset, count, keyRows, out long keyStride);
            float* values = RowsAsF32(p, p.V, offset, count, valueRows, out long valueStride);
            if (p.Element == DType.F32) // read in place: fetch the next tile meanwhile
            {
                PrefetchNextTile(keys, keyStride, p.Keys - firstKey, d);
                PrefetchNextTile(values, valueStride, p.Keys - firstKey, d);
            }
            Scores<TV, TS>(keys, keyStride, count, qt, d, scores, lanes);
            MaskScores(mask, firstKey, count, scores, lanes);
            UpdateSoftmax<TV, TS>(scores, count, lanes, rowMax, rowSum, rescale);
            Accumulate<TV, TS>(values, valueStride, count, scores, d, ot, lanes, rescale);
        }

        // Normalise by the softmax sum; rows that saw no unmasked key have sum 0 and are defined as zeros.
        InverseSums<TV, TS>(rowSum, lanes, 1f, rescale);
        if (p.Element == DType.F32)
        {
            StoreTransposed(ot, rescale, 1f, queries, d, p.F32(p.Out) + firstRow, p.Channels);
            return;
        }
        StoreTransposed(ot, rescale, 1f, queries, d, keyRows, d);
        StoreRows(p, keyRows, queries, p.Out, firstRow);
    }

    /// <summary>
    /// <paramref name="count"/> rows of D elements of <paramref name="tensor"/> from element <paramref name="offset"/>
    /// on as f32 rows <paramref name="stride"/> floats apart: in place for F32 inputs, else converted into
    /// <paramref name="scratch"/> ([count][D]).
    /// </summary>
    private static float* RowsAsF32(in Problem p, byte* tensor, long offset, int count, float* scratch, out long stride)
    {
        if (p.Element == DType.F32)
        {
            stride = p.Channels;
            return (float*)tensor + offset;
        }
        stride = p.HeadDim;
        int size = p.Element.Size(), rowBytes = p.HeadDim * size;
        for (int j = 0; j < count; j++)
            FloatConversions.ToSingle(new ReadOnlySpan<byte>(tensor + (offset + (long)j * p.Channels) * size, rowBytes),
                p.Element, new Span<float>(scratch + (long)j * p.HeadDim, p.HeadDim), "attention");
        return scratch;
    }

    /// <summary>
    /// Writes <paramref name="count"/> f32 rows of D floats (<paramref name="rows"/>, [count][D]) into
    /// <paramref name="tensor"/> from element <paramref name="offset"/> on, rounded to nearest even in the 16-bit type.
    /// </summary>
    private static void StoreRows(in Problem p, float* rows, int count, byte* tensor, long offset)
    {
        int size = p.Element.Size();
        for (int i = 0; i < count; i++)
            FloatConversions.FromSingle(new ReadOnlySpan<float>(rows + (long)i * p.HeadDim, p.HeadDim), p.Element,
                new Span<byte>(tensor + (offset + (long)i * p.Channels) * size, p.HeadDim * size));
    }

    /// <summary>
    /// Asks for the rows of the streamed tile after the one at <paramref name="tile"/> (of <paramref name="remaining"/>
    /// rows from there) to be brought into L2 while this one is computed: for long sequences they come from L3, and the
    /// rows are strided (one head's slice of each token), which the hardware prefetchers follow poorly.
    /// </summary>
    private static void PrefetchNextTile(float* tile, long stride, int remaining, int d)
    {
        if (!Sse.IsSupported) return;
        int rows = Math.Min(RowTile, remaining - RowTile);
        float* next = tile + RowTile * stride;
        for (int j = 0; j < rows; j++)
            for (int c = 0; c < d; c += 16)
                Sse.Prefetch1(next + j * stride + c);
    }

    /// <summary>factor / sum per lane, 0 where the sum is 0 (a row that saw no unmasked key).</summary>
    private static void InverseSums<TV, TS>(float* rowSum, int lanes, float factor, float* inverse)
        where TV : unmanaged where TS : ISimd<TV>
    {
        for (int i = 0; i < lanes; i += TS.Width)
        {
            TV sum = TS.Load(rowSum + i);
            TS.Store(inverse + i, TS.ZeroWhereNotPositive(sum, TS.Div(TS.Splat(factor), sum)));
        }
    }

    /// <summary>
    /// rows[i][c] = packed[c][i] · laneScale[i] · <paramref name="scale"/> for the first <paramref name="count"/>
    /// lanes; a null laneScale counts as ones.
    /// </summary>
    private static void StoreTransposed(float* packed, float* laneScale, float scale, int count, int d, float* rows, long stride)
    {
        for (int i = 0; i < count; i++)
        {
            float* row = rows + (long)i * stride;
            float factor = laneScale == null ? scale : laneScale[i] * scale;
            for (int c = 0; c < d; c++) row[c] = packed[c * LaneTile + i] * factor;
        }
    }

    /// <summary>
    /// Sᵀ[j][lanes] = Σ_c K[j][c] · Qᵀ[c][lanes] for rows j &lt; <paramref name="count"/>: the scores of a key tile
    /// against packed queries, and likewise any rows read in place (values, queries, dy) against a packed tile.
    /// </summary>
    private static void Scores<TV, TS>(float* keys, long keyStride, int count, float* qt, int d, float* scores, int lanes)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int group = 2 * TS.Width;
        int j = 0;
        for (; j + RowBlock <= count; j += RowBlock)
            for (int g = 0; g < lanes; g += group)
                ScoresBlock4<TV, TS>(keys + j * keyStride, keyStride, qt + g, d, scores + j * LaneTile + g);
        for (; j < count; j++)
            for (int g = 0; g < lanes; g += group)
                ScoresBlock1<TV, TS>(keys + j * keyStride, qt + g, d, scores + j * LaneTile + g);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresBlock4<TV, TS>(float* k0, long keyStride, float* qt, int d, float* s)
        where TV : unmanaged where TS : ISimd<TV>
    {
        float* k1 = k0 + keyStride, k2 = k1 + keyStride, k3 = k2 + keyStride;
        TV a00 = TS.Splat(0f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int c = 0; c < d; c++, qt += LaneTile)
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
        s += LaneTile;
        TS.Store(s, a10); TS.Store(s + TS.Width, a11);
        s += LaneTile;
        TS.Store(s, a20); TS.Store(s + TS.Width, a21);
        s += LaneTile;
        TS.Store(s, a30); TS.Store(s + TS.Width, a31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoresBlock1<TV, TS>(float* k0, float* qt, int d, float* s)
        where TV : unmanaged where TS : ISimd<TV>
    {
        TV a0 = TS.Splat(0f), a1 = a0;
        for (int c = 0; c < d; c++, qt += LaneTile)
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
            for (int j = 0; j < count; j++) max = TS.Max(max, TS.Load(column + j * LaneTile));
            // While every key so far is masked the max is -inf; subtracting 0 instead keeps the weights 0, not NaN.
            TV shift = TS.ZeroWhereNegativeInfinity(max);
            TV factor = Exp2<TV, TS>(TS.Sub(oldMax, shift));
            TV sum = TS.Splat(0f);
            for (int j = 0; j < count; j++)
            {
                TV weight = Exp2<TV, TS>(TS.Sub(TS.Load(column + j * LaneTile), shift));
                TS.Store(column + j * LaneTile, weight);
                sum = TS.Add(sum, weight);
            }
            TS.Store(rescale + i, factor);
            TS.Store(rowSum + i, TS.MulAdd(TS.Load(rowSum + i), factor, sum));
            TS.Store(rowMax + i, max);
        }
    }

    /// <summary>
    /// Oᵀ[c][lanes] = Oᵀ[c][lanes] · rescale + Σ_j V[j][c] · Pᵀ[j][lanes] over <paramref name="count"/> rows read in
    /// place (values against weights, or any rows against per-lane coefficients); a null rescale keeps Oᵀ's scale.
    /// </summary>
    private static void Accumulate<TV, TS>(float* values, long valueStride, int count, float* weights, int d, float* ot,
        int lanes, float* rescale) where TV : unmanaged where TS : ISimd<TV>
    {
        int group = 2 * TS.Width;
        for (int g = 0; g < lanes; g += group)
        {
            TV r0 = rescale == null ? TS.Splat(1f) : TS.Load(rescale + g);
            TV r1 = rescale == null ? r0 : TS.Load(rescale + g + TS.Width);
            int c = 0;
            for (; c + RowBlock <= d; c += RowBlock)
                AccumulateBlock4<TV, TS>(values + c, valueStride, count, weights + g, ot + c * LaneTile + g, r0, r1);
            for (; c < d; c++)
                AccumulateBlock1<TV, TS>(values + c, valueStride, count, weights + g, ot + c * LaneTile + g, r0, r1);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateBlock4<TV, TS>(float* v, long valueStride, int count, float* w, float* o, TV r0, TV r1)
        where TV : unmanaged where TS : ISimd<TV>
    {
        float* o1 = o + LaneTile, o2 = o1 + LaneTile, o3 = o2 + LaneTile;
        TV a00 = TS.Mul(TS.Load(o), r0), a01 = TS.Mul(TS.Load(o + TS.Width), r1);
        TV a10 = TS.Mul(TS.Load(o1), r0), a11 = TS.Mul(TS.Load(o1 + TS.Width), r1);
        TV a20 = TS.Mul(TS.Load(o2), r0), a21 = TS.Mul(TS.Load(o2 + TS.Width), r1);
        TV a30 = TS.Mul(TS.Load(o3), r0), a31 = TS.Mul(TS.Load(o3 + TS.Width), r1);
        for (int j = 0; j < count; j++, w += LaneTile, v += valueStride)
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
        for (int j = 0; j < count; j++, w += LaneTile, v += valueStride)
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
