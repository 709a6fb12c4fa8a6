using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/attention.cu: flash-style attention and its gradient, one block per (tile of the block's own tokens,
/// batch·head): attention_f32 for F32 inputs (f32 throughout), attention_f16 / attention_bf16 on tensor cores for
/// 16-bit inputs (f32 accumulation and softmax); the gradient kernels are F32 only, as their ops require.
/// </summary>
public abstract partial class CudaKernelBackend :
    IKernel<AttentionOp>, IKernel<AttentionQueryGradientOp>, IKernel<AttentionKeyValueGradientOp>
{
    public void Execute(AttentionOp op, in KernelArgs args)
    {
        var shape = AttentionKernel.Shape.Of(op.Name, op.Heads, args);
        if (args.Output.ElementCount == 0) return;
        var element = args.Input(0).DType;
        if (element != DType.F32)
        {
            // The tensor-core kernels take scale·log2(e): their softmax uses base-2 exponents.
            int tensorCoreKeyTile = AttentionKernel.TensorCoreKeyTile(shape.HeadDim);
            Launch(element == DType.F16 ? "attention_f16" : "attention_bf16",
                (Blocks(shape.Queries, AttentionKernel.TensorCoreQueryTile), shape.BatchHeads), AttentionKernel.TensorCoreThreads,
                (uint)AttentionKernel.TensorCoreSharedBytes(shape.HeadDim, tensorCoreKeyTile),
                args.Input(0), args.Input(1), args.Input(2), AttentionMask(args, 3), args.Output,
                shape.Queries, shape.Keys, op.Heads, shape.HeadDim, op.ScaleFor(shape.HeadDim) * MathF.Log2(MathF.E), tensorCoreKeyTile);
            return;
        }
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

    /// <summary>Query rows per block of the tensor-core kernels: one 16-row tile per warp.</summary>
    public const int TensorCoreQueryTile = 64;

    /// <summary>Threads per block of the tensor-core kernels: four warps.</summary>
    public const int TensorCoreThreads = 128;

    /// <summary>
    /// Shared memory up to which the tensor-core kernels take 64-key tiles: two blocks fit on an sm_80 SM (164 KiB) and
    /// still fewer registers than shared memory limit the occupancy of an sm_90 one.
    /// </summary>
    private const long TensorCoreWideTileBytes = 80 * 1024;

    /// <summary>Largest dynamic shared memory of a block on sm_80 (163 KiB); sm_90 allows 227 KiB.</summary>
    private const long TensorCoreSharedLimitBytes = 163 * 1024;

    /// <summary>
    /// Bytes of shared memory of a tensor-core block (the kernel's carve_tensor_core layout), with the head dim padded
    /// to Dp, a multiple of 16: the 16-bit query [64][Dp + 8], key and value [keyTile][Dp + 8] tiles, the f32 scores
    /// [64][keyTile + 4], the 16-bit weights [64][keyTile + 8], the f32 output accumulator [64][Dp + 4] and the key flags.
    /// </summary>
    public static long TensorCoreSharedBytes(int headDim, int keyTile)
    {
        long padded = (headDim + 15) / 16 * 16;
        return 2 * (TensorCoreQueryTile + 2L * keyTile) * (padded + 8) + 4L * TensorCoreQueryTile * (keyTile + 4)
            + 2L * TensorCoreQueryTile * (keyTile + 8) + 4L * TensorCoreQueryTile * (padded + 4) + 4L * keyTile;
    }

    /// <summary>
    /// 64 keys per tile while the block's shared memory stays within 80 KiB (head dims up to 64), else 32 (head dims up
    /// to 288 fit an sm_80 block).
    /// </summary>
    public static int TensorCoreKeyTile(int headDim)
    {
        if (TensorCoreSharedBytes(headDim, 64) <= TensorCoreWideTileBytes) return 64;
        if (TensorCoreSharedBytes(headDim, 32) <= TensorCoreSharedLimitBytes) return 32;
        throw new NotSupportedException(
            $"attention: head dim {headDim} needs {TensorCoreSharedBytes(headDim, 32)} bytes of shared memory for 16-bit inputs, more than the {TensorCoreSharedLimitBytes} of a block");
    }
}
