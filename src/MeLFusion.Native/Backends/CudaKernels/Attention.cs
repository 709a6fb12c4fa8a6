using MeLFusion.Native.Interop;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/attention.cu: flash-style attention, one block per (query tile, batch·head): attention_f32 for F32 inputs
/// (f32 throughout), attention_f16 / attention_bf16 on tensor cores for 16-bit inputs (f32 accumulation and softmax).
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<AttentionOp>
{
    public void Execute(AttentionOp op, in KernelArgs args)
    {
        var (q, k, output) = (args.Input(0), args.Input(1), args.Output);
        int batch = q.Dim(0), queries = q.Dim(1), keys = k.Dim(1);
        int headDim = q.Dim(2) / op.Heads;
        if (1L * batch * op.Heads > AttentionKernel.MaxGridY)
            throw new NotSupportedException(
                $"{op.Name}: {batch} batch items × {op.Heads} heads (q {q}) exceed the {AttentionKernel.MaxGridY} blocks of a grid's y dimension");
        if (q.DType != DType.F32)
        {
            int tensorCoreKeyTile = AttentionKernel.TensorCoreKeyTile(headDim);
            if (output.ElementCount == 0) return;
            Launch(q.DType == DType.F16 ? "attention_f16" : "attention_bf16",
                ((queries + AttentionKernel.TensorCoreQueryTile - 1) / AttentionKernel.TensorCoreQueryTile, batch * op.Heads),
                AttentionKernel.TensorCoreThreads, (uint)AttentionKernel.TensorCoreSharedBytes(headDim, tensorCoreKeyTile),
                q, k, args.Input(2), args.InputCount == 4 ? args.Input(3) : LaunchArg.NullPointer, output,
                queries, keys, op.Heads, headDim, op.ScaleFor(headDim) * MathF.Log2(MathF.E), tensorCoreKeyTile);
            return;
        }

        var (queryTile, keyTile) = AttentionKernel.Tiles(headDim);
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
