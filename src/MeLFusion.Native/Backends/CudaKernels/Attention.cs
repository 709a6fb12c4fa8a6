using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/attention.cu: flash-style attention, one block per (query tile, batch·head), f32 throughout.</summary>
public abstract partial class CudaKernelBackend : IKernel<AttentionOp>
{
    public void Execute(AttentionOp op, in KernelArgs args)
    {
        var (q, k, output) = (args.Input(0), args.Input(1), args.Output);
        int batch = q.Dim(0), queries = q.Dim(1), keys = k.Dim(1);
        int headDim = q.Dim(2) / op.Heads;
        var (queryTile, keyTile) = AttentionKernel.Tiles(headDim);
        if (1L * batch * op.Heads > AttentionKernel.MaxGridY)
            throw new NotSupportedException(
                $"{op.Name}: {batch} batch items × {op.Heads} heads (q {q}) exceed the {AttentionKernel.MaxGridY} blocks of a grid's y dimension");
        if (output.ElementCount == 0) return;

        Launch("attention_f32", ((queries + queryTile - 1) / queryTile, batch * op.Heads), AttentionKernel.Threads,
            (uint)(AttentionKernel.SharedFloats(headDim, queryTile, keyTile) * sizeof(float)),
            q, k, args.Input(2), args.InputCount == 4 ? args.Input(3) : LaunchArg.NullPointer, output,
            queries, keys, op.Heads, headDim, op.ScaleFor(headDim), queryTile, keyTile);
    }
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

    /// <summary>
    /// Floats of shared memory one block uses (the kernel's carve_tiles layout): the scaled query tile, K (one pad
    /// float per row) and V tiles, the output accumulator, the scores, three per-row values and the key flags.
    /// </summary>
    public static long SharedFloats(int headDim, int queryTile, int keyTile) =>
        2L * queryTile * headDim + keyTile * (2L * headDim + 1) + 1L * queryTile * keyTile + 3L * queryTile + keyTile;

    /// <summary>
    /// The largest query and key tiles whose shared memory fits in 48 KiB: both start at 32 and the larger one (the key
    /// tile on ties) halves until it fits. Head dims up to 80 keep 32×32, 160 gets 16×16.
    /// </summary>
    public static (int QueryTile, int KeyTile) Tiles(int headDim)
    {
        int queryTile = MaxQueryTile, keyTile = MaxKeyTile;
        while (SharedFloats(headDim, queryTile, keyTile) * sizeof(float) > SharedLimitBytes)
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
