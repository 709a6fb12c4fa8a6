using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/attention.cu: flash-style attention and its gradient, one block per (tile of the block's own tokens,
/// batch·head), f32 throughout.
/// </summary>
public abstract partial class CudaKernelBackend :
    IKernel<AttentionOp>, IKernel<AttentionQueryGradientOp>, IKernel<AttentionKeyValueGradientOp>
{
    public void Execute(AttentionOp op, in KernelArgs args)
    {
        var shape = AttentionKernel.Shape.Of(op.Name, op.Heads, args);
        if (args.Output.ElementCount == 0) return;
        var (queryTile, keyTile) = AttentionKernel.Tiles(shape.HeadDim, AttentionKernel.ForwardSharedFloats);
        Launch("attention_f32", (Blocks(shape.Queries, queryTile), shape.BatchHeads), AttentionKernel.Threads,
            AttentionKernel.SharedBytes(AttentionKernel.ForwardSharedFloats, shape.HeadDim, queryTile, keyTile),
            args.Input(0), args.Input(1), args.Input(2), AttentionMask(args, 3), args.Output,
            shape.Queries, shape.Keys, op.Heads, shape.HeadDim, op.ScaleFor(shape.HeadDim), queryTile, keyTile);
    }

    public void Execute(AttentionQueryGradientOp op, in KernelArgs args)
    {
        var shape = AttentionKernel.Shape.Of(op.Name, op.Heads, args);
        if (args.Output.ElementCount == 0) return;
        var (queryTile, keyTile) = AttentionKernel.Tiles(shape.HeadDim, AttentionKernel.QueryGradientSharedFloats);
        Launch("attention_query_gradient_f32", (Blocks(shape.Queries, queryTile), shape.BatchHeads), AttentionKernel.Threads,
            AttentionKernel.SharedBytes(AttentionKernel.QueryGradientSharedFloats, shape.HeadDim, queryTile, keyTile),
            args.Input(0), args.Input(1), args.Input(2), args.Input(3), args.Input(4),
            AttentionMask(args, AttentionQueryGradientOp.MaskInput), args.Output,
            shape.Queries, shape.Keys, op.Heads, shape.HeadDim, op.Forward.ScaleFor(shape.HeadDim), queryTile, keyTile);
    }

    /// <summary>Row statistics into the op's workspace, then dk and dv per key tile into the two halves of the output.</summary>
    public void Execute(AttentionKeyValueGradientOp op, in KernelArgs args)
    {
        var shape = AttentionKernel.Shape.Of(op.Name, op.Heads, args);
        if (args.Output.ElementCount == 0) return;
        float scale = op.Forward.ScaleFor(shape.HeadDim);
        var mask = AttentionMask(args, AttentionKeyValueGradientOp.MaskInput);
        nint statistics = args.Workspace.Data;
        if (shape.Queries > 0)
        {
            var (queryTile, keyTile) = AttentionKernel.Tiles(shape.HeadDim, AttentionKernel.RowStatisticsSharedFloats);
            Launch("attention_row_statistics_f32", (Blocks(shape.Queries, queryTile), shape.BatchHeads), AttentionKernel.Threads,
                AttentionKernel.SharedBytes(AttentionKernel.RowStatisticsSharedFloats, shape.HeadDim, queryTile, keyTile),
                args.Input(0), args.Input(1), args.Input(3), args.Input(4), mask, statistics,
                shape.Queries, shape.Keys, op.Heads, shape.HeadDim, scale, queryTile, keyTile);
        }
        var (rowTile, ownTile) = AttentionKernel.Tiles(shape.HeadDim, AttentionKernel.KeyValueGradientSharedFloats);
        nint keyGradient = args.Output.Data, valueGradient = keyGradient + (nint)(args.Output.ByteCount / 2);
        Launch("attention_key_value_gradient_f32", (Blocks(shape.Keys, ownTile), shape.BatchHeads), AttentionKernel.Threads,
            AttentionKernel.SharedBytes(AttentionKernel.KeyValueGradientSharedFloats, shape.HeadDim, rowTile, ownTile),
            args.Input(0), args.Input(1), args.Input(2), args.Input(4), mask, statistics, keyGradient, valueGradient,
            shape.Queries, shape.Keys, op.Heads, shape.HeadDim, scale, rowTile, ownTile);
    }

    private static LaunchArg AttentionMask(in KernelArgs args, int maskInput) =>
        args.InputCount > maskInput ? args.Input(maskInput) : LaunchArg.NullPointer;

    private static int Blocks(int tokens, int tile) => (tokens + tile - 1) / tile;
}

/// <summary>Launch geometry of kernels/attention.cu.</summary>
internal static class AttentionKernel
{
    /// <summary>Threads per block: four warps, each folding one query row's key tile at a time into the online softmax.</summary>
    public const int Threads = 128;

    /// <summary>Largest tile sizes; a key tile is at most a warp (one lane per key).</summary>
    private const int MaxQueryTile = 32, MaxKeyTile = 32;

    /// <summary>Most blocks in a grid's y dimension, which holds batch·heads.</summary>
    public const int MaxGridY = 65535;

    /// <summary>Dynamic shared memory every GPU grants without opting in.</summary>
    private const long SharedLimitBytes = 48 * 1024;

    /// <summary>Shared floats of one block of a kernel (its carve_* layout) for a head dim and tile sizes.</summary>
    public delegate long SharedFloats(int headDim, int queryTile, int keyTile);

    /// <summary>Sizes of an attention call, forward or backward; rejects more batch·heads than a grid's y dimension holds.</summary>
    public readonly record struct Shape(int Queries, int Keys, int HeadDim, int BatchHeads)
    {
        public static Shape Of(string op, int heads, in KernelArgs args)
        {
            var (q, k) = (args.Input(0), args.Input(1));
            if (1L * q.Dim(0) * heads > MaxGridY)
                throw new NotSupportedException(
                    $"{op}: {q.Dim(0)} batch items × {heads} heads (q {q}) exceed the {MaxGridY} blocks of a grid's y dimension");
            return new Shape(q.Dim(1), k.Dim(1), q.Dim(2) / heads, q.Dim(0) * heads);
        }
    }

    /// <summary>
    /// attention_f32: the scaled query tile, K (one pad float per row) and V tiles, the output accumulator, the scores,
    /// three per-row values and the key flags.
    /// </summary>
    public static long ForwardSharedFloats(int headDim, int queryTile, int keyTile) =>
        2L * queryTile * headDim + keyTile * (2L * headDim + 1) + 1L * queryTile * keyTile + 3L * queryTile + keyTile;

    /// <summary>
    /// attention_query_gradient_f32: query, dy and accumulator tiles, padded K and V tiles, scores and their gradients,
    /// four per-row values and the key flags.
    /// </summary>
    public static long QueryGradientSharedFloats(int headDim, int queryTile, int keyTile) =>
        3L * queryTile * headDim + 2L * keyTile * (headDim + 1) + 2L * queryTile * keyTile + 4L * queryTile + keyTile;

    /// <summary>attention_row_statistics_f32: the query tile, a padded K tile, the scores, three per-row values and the key flags.</summary>
    public static long RowStatisticsSharedFloats(int headDim, int queryTile, int keyTile) =>
        1L * queryTile * headDim + 1L * keyTile * (headDim + 1) + 1L * queryTile * keyTile + 3L * queryTile + keyTile;

    /// <summary>
    /// attention_key_value_gradient_f32: padded K and V tiles, the dk and dv accumulators, query and dy tiles, P and dS,
    /// two per-row statistics and the key flags.
    /// </summary>
    public static long KeyValueGradientSharedFloats(int headDim, int queryTile, int keyTile) =>
        2L * keyTile * (headDim + 1) + 2L * keyTile * headDim + 2L * queryTile * headDim + 2L * queryTile * keyTile
        + 2L * queryTile + keyTile;

    public static uint SharedBytes(SharedFloats sharedFloats, int headDim, int queryTile, int keyTile) =>
        (uint)(sharedFloats(headDim, queryTile, keyTile) * sizeof(float));

    /// <summary>
    /// The largest query and key tiles whose shared memory fits in 48 KiB: both start at 32 and the larger one (the key
    /// tile on ties) halves until it fits. The forward keeps 32×32 up to head dim 80 and gets 16×16 at 160.
    /// </summary>
    public static (int QueryTile, int KeyTile) Tiles(int headDim, SharedFloats sharedFloats)
    {
        int queryTile = MaxQueryTile, keyTile = MaxKeyTile;
        while (sharedFloats(headDim, queryTile, keyTile) * sizeof(float) > SharedLimitBytes)
        {
            if (queryTile == 1 && keyTile == 1)
                throw new NotSupportedException(
                    $"attention: head dim {headDim} needs more than {SharedLimitBytes} bytes of shared memory even with single-row tiles");
            if (keyTile >= queryTile) keyTile /= 2;
            else queryTile /= 2;
        }
        return (queryTile, keyTile);
    }
}
