using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend :
    IKernel<AttentionQueryGradientOp>, IKernelWorkspace<AttentionQueryGradientOp>,
    IKernel<AttentionKeyValueGradientOp>, IKernelWorkspace<AttentionKeyValueGradientOp>
{
    /// <summary>Per-worker tile scratch of the dq pass.</summary>
    public long WorkspaceBytes(AttentionQueryGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        CpuParallel.Workers * FlashAttention.QueryGradientScratchFloats(op.Forward.HeadDim(inputs)) * sizeof(float);

    /// <summary>The op's row statistics (rounded up to keep the tile scratch 64-byte aligned), then per-worker tile scratch.</summary>
    public long WorkspaceBytes(AttentionKeyValueGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        (RowStatisticsSlotFloats(op, inputs[0].Shape)
         + CpuParallel.Workers * FlashAttention.KeyValueGradientScratchFloats(op.Forward.HeadDim(inputs))) * sizeof(float);

    public unsafe void Execute(AttentionQueryGradientOp op, in KernelArgs args)
    {
        var problem = AttentionGradientProblem(op.Forward, args);
        problem.QueryGradient = args.Output.Ptr<float>();
        FlashAttention.QueryGradient(problem, args.Workspace.Ptr<float>(), AttentionVectorBitsLimit);
    }

    public unsafe void Execute(AttentionKeyValueGradientOp op, in KernelArgs args)
    {
        var problem = AttentionGradientProblem(op.Forward, args);
        problem.KeyGradient = args.Output.Ptr<float>();
        problem.ValueGradient = problem.KeyGradient + args.Output.ElementCount / 2;
        var q = args.Input(0).Shape;
        float* workspace = args.Workspace.Ptr<float>();
        problem.RowLogSumExp = workspace;
        problem.RowDelta = workspace + op.RowStatisticsFloats(q) / 2;
        FlashAttention.KeyValueGradient(problem, workspace + RowStatisticsSlotFloats(op, q), AttentionVectorBitsLimit);
    }

    private static long RowStatisticsSlotFloats(AttentionKeyValueGradientOp op, TensorShape q) =>
        (op.RowStatisticsFloats(q) + 15) / 16 * 16;

    /// <summary>The problem of a backward op: q, k, v, the forward output o, its gradient dy, then the optional mask.</summary>
    private static unsafe FlashAttention.Problem AttentionGradientProblem(AttentionOp forward, in KernelArgs args)
    {
        var problem = AttentionProblem(forward, args, AttentionQueryGradientOp.MaskInput);
        problem.Out = args.Input(3).Ptr<byte>();
        problem.OutGradient = args.Input(4).Ptr<float>();
        return problem;
    }
}

/// <summary>
/// The backward passes of <see cref="FlashAttention"/>. With P = softmax(S), the gradient of the scores is
/// dS = P ∘ (dP − δ), dP = dy·Vᵀ and δ = rowsum(dy ∘ o) = rowsum(P ∘ dP); then dq = scale · dS·K,
/// dk = scale · dSᵀ·Q and dv = Pᵀ·dy. No pass keeps an N×M matrix:
/// <list type="bullet">
/// <item>dq: queries in lanes, as in the forward; one online-softmax sweep over the keys accumulates
/// Σ_j 2^(s_j − max)(dP_j − δ)·K_j and divides by the running sum at the end, so no statistics are needed first.</item>
/// <item>dk, dv: keys in lanes (Kᵀ, Vᵀ and the accumulators dKᵀ, dVᵀ packed), sweeping all queries, which are read
/// in place. The exact P = 2^(s − lse) needs every query's log-sum-exp beforehand; a first pass over query tiles
/// computes it and δ into <see cref="Problem.RowLogSumExp"/> and <see cref="Problem.RowDelta"/>.</item>
/// </list>
/// Every product is <see cref="Scores{TV, TS}"/> or <see cref="Accumulate{TV, TS}"/>: broadcast a row element, FMA
/// against lanes. Each output element is owned by one work item and summed in a fixed order: deterministic.
/// <para>
/// The two ops do 8 score-sized products (dq 3, statistics 1, dk/dv 4) against autograd's 4, yet on 2 Zen 4 cores
/// they take about 0.6–0.75× the time of PyTorch 1.13's backward of softmax(q·kᵀ)·v (B·H = 8 × 1024² and
/// B·H = 2 × 4096², head dim 64), which is bound by its N×M intermediates.
/// </para>
/// </summary>
internal static unsafe partial class FlashAttention
{
    /// <summary>Floats of one worker's dq scratch: Qᵀ, dyᵀ, dQᵀ [D][LaneTile]; S, dP [RowTile][LaneTile]; max, sum, rescale, δ.</summary>
    public static long QueryGradientScratchFloats(int headDim) => (3L * headDim + 2 * RowTile + 4) * LaneTile;

    /// <summary>
    /// Floats of one worker's dk/dv scratch: Kᵀ, Vᵀ, dKᵀ, dVᵀ [D][LaneTile], P and dS [RowTile][LaneTile] and the key
    /// bias; the row-statistics pass before it needs less (Qᵀ, S, max, sum, rescale).
    /// </summary>
    public static long KeyValueGradientScratchFloats(int headDim) => (4L * headDim + 2 * RowTile + 1) * LaneTile;

    public static void QueryGradient(in Problem problem, float* workspace, int vectorBitsLimit) =>
        Dispatch<QueryGradientPass>(problem, workspace, vectorBitsLimit);

    /// <summary>The row statistics into <see cref="Problem.RowLogSumExp"/> and <see cref="Problem.RowDelta"/>, then dk and dv per key tile.</summary>
    public static void KeyValueGradient(in Problem problem, float* workspace, int vectorBitsLimit)
    {
        Dispatch<RowStatisticsPass>(problem, workspace, vectorBitsLimit);
        Dispatch<KeyValueGradientPass>(problem, workspace, vectorBitsLimit);
    }

    private readonly struct QueryGradientPass : IPass
    {
        public static void Run<TV, TS>(in Problem p, float* workspace) where TV : unmanaged where TS : ISimd<TV>
        {
            var problem = p;
            ForEachTile(p, p.Queries, workspace, QueryGradientScratchFloats(p.HeadDim),
                (scratch, batch, head, firstQuery) => QueryGradientTile<TV, TS>(problem, scratch, batch, head, firstQuery));
        }
    }

    /// <summary>Per (batch, head, query): log2-sum-exp of the base-2 scores and δ = rowsum(dy ∘ o).</summary>
    private readonly struct RowStatisticsPass : IPass
    {
        public static void Run<TV, TS>(in Problem p, float* workspace) where TV : unmanaged where TS : ISimd<TV>
        {
            var problem = p;
            ForEachTile(p, p.Queries, workspace, KeyValueGradientScratchFloats(p.HeadDim),
                (scratch, batch, head, firstQuery) => RowStatisticsTile<TV, TS>(problem, scratch, batch, head, firstQuery));
        }
    }

    private readonly struct KeyValueGradientPass : IPass
    {
        public static void Run<TV, TS>(in Problem p, float* workspace) where TV : unmanaged where TS : ISimd<TV>
        {
            var problem = p;
            ForEachTile(p, p.Keys, workspace, KeyValueGradientScratchFloats(p.HeadDim),
                (scratch, batch, head, firstKey) => KeyValueGradientTile<TV, TS>(problem, scratch, batch, head, firstKey));
        }
    }

    /// <summary>dq rows [firstQuery, firstQuery + LaneTile) of one (batch, head).</summary>
    private static void QueryGradientTile<TV, TS>(in Problem p, float* scratch, int batch, int head, int firstQuery)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int d = p.HeadDim;
        int queries = Math.Min(LaneTile, p.Queries - firstQuery);
        int lanes = PaddedLanes<TV, TS>(queries);
        float* qt = scratch;
        float* dyt = qt + (long)d * LaneTile;
        float* dqt = dyt + (long)d * LaneTile;
        float* scores = dqt + (long)d * LaneTile;
        float* scoreGradients = scores + RowTile * LaneTile;
        float* rowMax = scoreGradients + RowTile * LaneTile;
        float* rowSum = rowMax + LaneTile;
        float* rescale = rowSum + LaneTile;
        float* delta = rescale + LaneTile;

        long headOffset = (long)head * d;
        long firstRow = ((long)batch * p.Queries + firstQuery) * p.Channels + headOffset;
        PackTransposed(p.F32(p.Q) + firstRow, p.Channels, queries, lanes, d, p.ScoreScale, qt);
        PackTransposed(p.OutGradient + firstRow, p.Channels, queries, lanes, d, 1f, dyt);
        new Span<float>(dqt, d * LaneTile).Clear();
        new Span<float>(rowMax, lanes).Fill(float.NegativeInfinity);
        new Span<float>(rowSum, lanes).Clear();
        new Span<float>(delta, lanes).Clear();
        RowDeltas(p.F32(p.Out) + firstRow, p.OutGradient + firstRow, p.Channels, queries, d, delta);

        float* keys = p.F32(p.K) + (long)batch * p.Keys * p.Channels + headOffset;
        float* values = p.F32(p.V) + (long)batch * p.Keys * p.Channels + headOffset;
        int* mask = p.KeyMask == null ? null : p.KeyMask + (long)batch * p.Keys;
        for (int firstKey = 0; firstKey < p.Keys; firstKey += RowTile)
        {
            int count = Math.Min(RowTile, p.Keys - firstKey);
            if (AllMasked(mask, firstKey, count)) continue;
            long offset = (long)firstKey * p.Channels;
            PrefetchNextTile(keys + offset, p.Channels, p.Keys - firstKey, d);
            PrefetchNextTile(values + offset, p.Channels, p.Keys - firstKey, d);
            Scores<TV, TS>(keys + offset, p.Channels, count, qt, d, scores, lanes);
            Scores<TV, TS>(values + offset, p.Channels, count, dyt, d, scoreGradients, lanes);
            MaskScores(mask, firstKey, count, scores, lanes);
            UpdateSoftmax<TV, TS>(scores, count, lanes, rowMax, rowSum, rescale);
            // Unnormalised dS: the weights still lack the 1/sum, applied to dq as a whole at the end.
            for (int j = 0; j < count; j++)
                ScoreGradientRow<TV, TS>(scores + j * LaneTile, scoreGradients + j * LaneTile, delta, lanes);
            Accumulate<TV, TS>(keys + offset, p.Channels, count, scoreGradients, d, dqt, lanes, rescale);
        }

        InverseSums<TV, TS>(rowSum, lanes, p.Scale, rescale);
        StoreTransposed(dqt, rescale, 1f, queries, d, p.QueryGradient + firstRow, p.Channels);
    }

    /// <summary>The base-2 log-sum-exp and δ of query rows [firstQuery, firstQuery + LaneTile) of one (batch, head).</summary>
    private static void RowStatisticsTile<TV, TS>(in Problem p, float* scratch, int batch, int head, int firstQuery)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int d = p.HeadDim;
        int queries = Math.Min(LaneTile, p.Queries - firstQuery);
        int lanes = PaddedLanes<TV, TS>(queries);
        float* qt = scratch;
        float* scores = qt + (long)d * LaneTile;
        float* rowMax = scores + RowTile * LaneTile;
        float* rowSum = rowMax + LaneTile;
        float* rescale = rowSum + LaneTile;

        long headOffset = (long)head * d;
        long firstRow = ((long)batch * p.Queries + firstQuery) * p.Channels + headOffset;
        PackTransposed(p.F32(p.Q) + firstRow, p.Channels, queries, lanes, d, p.ScoreScale, qt);
        new Span<float>(rowMax, lanes).Fill(float.NegativeInfinity);
        new Span<float>(rowSum, lanes).Clear();

        float* keys = p.F32(p.K) + (long)batch * p.Keys * p.Channels + headOffset;
        int* mask = p.KeyMask == null ? null : p.KeyMask + (long)batch * p.Keys;
        for (int firstKey = 0; firstKey < p.Keys; firstKey += RowTile)
        {
            int count = Math.Min(RowTile, p.Keys - firstKey);
            if (AllMasked(mask, firstKey, count)) continue;
            PrefetchNextTile(keys + (long)firstKey * p.Channels, p.Channels, p.Keys - firstKey, d);
            Scores<TV, TS>(keys + (long)firstKey * p.Channels, p.Channels, count, qt, d, scores, lanes);
            MaskScores(mask, firstKey, count, scores, lanes);
            UpdateSoftmax<TV, TS>(scores, count, lanes, rowMax, rowSum, rescale);
        }

        long row = ((long)batch * p.Heads + head) * p.Queries + firstQuery;
        float* logSumExp = p.RowLogSumExp + row;
        // A row with every key masked keeps -inf; the key pass never reads it, since all its keys are skipped.
        for (int i = 0; i < queries; i++)
            logSumExp[i] = rowSum[i] > 0f ? rowMax[i] + MathF.Log2(rowSum[i]) : float.NegativeInfinity;
        RowDeltas(p.F32(p.Out) + firstRow, p.OutGradient + firstRow, p.Channels, queries, d, p.RowDelta + row);
    }

    /// <summary>dk and dv rows [firstKey, firstKey + LaneTile) of one (batch, head), summed over every query.</summary>
    private static void KeyValueGradientTile<TV, TS>(in Problem p, float* scratch, int batch, int head, int firstKey)
        where TV : unmanaged where TS : ISimd<TV>
    {
        int d = p.HeadDim;
        int keys = Math.Min(LaneTile, p.Keys - firstKey);
        int lanes = PaddedLanes<TV, TS>(keys);
        long headOffset = (long)head * d;
        long firstRow = ((long)batch * p.Keys + firstKey) * p.Channels + headOffset;
        int* mask = p.KeyMask == null ? null : p.KeyMask + (long)batch * p.Keys;
        if (AllMasked(mask, firstKey, keys))
        {
            // No query gives these keys any weight.
            for (int j = 0; j < keys; j++)
            {
                new Span<float>(p.KeyGradient + firstRow + (long)j * p.Channels, d).Clear();
                new Span<float>(p.ValueGradient + firstRow + (long)j * p.Channels, d).Clear();
            }
            return;
        }

        float* kt = scratch;
        float* vt = kt + (long)d * LaneTile;
        float* dkt = vt + (long)d * LaneTile;
        float* dvt = dkt + (long)d * LaneTile;
        float* probabilities = dvt + (long)d * LaneTile;
        float* scoreGradients = probabilities + RowTile * LaneTile;
        float* keyBias = scoreGradients + RowTile * LaneTile;

        PackTransposed(p.F32(p.K) + firstRow, p.Channels, keys, lanes, d, p.ScoreScale, kt);
        PackTransposed(p.F32(p.V) + firstRow, p.Channels, keys, lanes, d, 1f, vt);
        new Span<float>(dkt, d * LaneTile).Clear();
        new Span<float>(dvt, d * LaneTile).Clear();
        // Masked keys and padding lanes get -inf added to their scores: probability 0, so dk and dv rows of 0.
        for (int j = 0; j < lanes; j++)
            keyBias[j] = j < keys && (mask == null || mask[firstKey + j] != 0) ? 0f : float.NegativeInfinity;

        long statisticsRow = ((long)batch * p.Heads + head) * p.Queries;
        float* logSumExp = p.RowLogSumExp + statisticsRow;
        float* delta = p.RowDelta + statisticsRow;
        float* queryRows = p.F32(p.Q) + (long)batch * p.Queries * p.Channels + headOffset;
        float* gradientRows = p.OutGradient + (long)batch * p.Queries * p.Channels + headOffset;
        for (int firstQuery = 0; firstQuery < p.Queries; firstQuery += RowTile)
        {
            int count = Math.Min(RowTile, p.Queries - firstQuery);
            long offset = (long)firstQuery * p.Channels;
            PrefetchNextTile(queryRows + offset, p.Channels, p.Queries - firstQuery, d);
            PrefetchNextTile(gradientRows + offset, p.Channels, p.Queries - firstQuery, d);
            Scores<TV, TS>(queryRows + offset, p.Channels, count, kt, d, probabilities, lanes);
            Scores<TV, TS>(gradientRows + offset, p.Channels, count, vt, d, scoreGradients, lanes);
            for (int i = 0; i < count; i++)
            {
                float* row = probabilities + i * LaneTile;
                Probabilities<TV, TS>(row, keyBias, logSumExp[firstQuery + i], lanes);
                ScoreGradientRow<TV, TS>(row, scoreGradients + i * LaneTile, TS.Splat(delta[firstQuery + i]), lanes);
            }
            Accumulate<TV, TS>(gradientRows + offset, p.Channels, count, probabilities, d, dvt, lanes, null);
            Accumulate<TV, TS>(queryRows + offset, p.Channels, count, scoreGradients, d, dkt, lanes, null);
        }

        StoreTransposed(dkt, null, p.Scale, keys, d, p.KeyGradient + firstRow, p.Channels);
        StoreTransposed(dvt, null, 1f, keys, d, p.ValueGradient + firstRow, p.Channels);
    }

    /// <summary>δ_i = Σ_c o[i][c] · dy[i][c] for <paramref name="count"/> rows.</summary>
    private static void RowDeltas(float* outRows, float* gradientRows, long stride, int count, int d, float* delta)
    {
        for (int i = 0; i < count; i++)
        {
            float* o = outRows + i * stride, dy = gradientRows + i * stride;
            float sum = 0f;
            for (int c = 0; c < d; c++) sum = MathF.FusedMultiplyAdd(o[c], dy[c], sum);
            delta[i] = sum;
        }
    }

    /// <summary>One query row of key lanes: scores (base 2) become probabilities 2^(s + bias − lse) in place.</summary>
    private static void Probabilities<TV, TS>(float* row, float* keyBias, float logSumExp, int lanes)
        where TV : unmanaged where TS : ISimd<TV>
    {
        TV shift = TS.Splat(logSumExp);
        for (int j = 0; j < lanes; j += TS.Width)
            TS.Store(row + j, Exp2<TV, TS>(TS.Sub(TS.Add(TS.Load(row + j), TS.Load(keyBias + j)), shift)));
    }

    /// <summary>dS = P ∘ (dP − δ) over one row of lanes, δ per lane; written over dP.</summary>
    private static void ScoreGradientRow<TV, TS>(float* probabilities, float* scoreGradients, float* delta, int lanes)
        where TV : unmanaged where TS : ISimd<TV>
    {
        for (int j = 0; j < lanes; j += TS.Width)
            TS.Store(scoreGradients + j,
                TS.Mul(TS.Load(probabilities + j), TS.Sub(TS.Load(scoreGradients + j), TS.Load(delta + j))));
    }

    /// <summary>dS = P ∘ (dP − δ) over one row of lanes, one δ for the row; written over dP.</summary>
    private static void ScoreGradientRow<TV, TS>(float* probabilities, float* scoreGradients, TV delta, int lanes)
        where TV : unmanaged where TS : ISimd<TV>
    {
        for (int j = 0; j < lanes; j += TS.Width)
            TS.Store(scoreGradients + j, TS.Mul(TS.Load(probabilities + j), TS.Sub(TS.Load(scoreGradients + j), delta)));
    }
}
