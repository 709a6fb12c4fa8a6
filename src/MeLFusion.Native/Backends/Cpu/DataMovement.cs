namespace MeLFusion.Native.Backends.Cpu;

/// <summary>Parallel byte copies shared by the data-movement kernels (copy, concat, embedding).</summary>
internal static unsafe class DataMovement
{
    /// <summary>Bytes a parallel chunk should move at least; below this, handing work to a thread costs more than it saves.</summary>
    public const long MinParallelBytes = 64 * 1024;

    /// <summary>Longest piece of one row a single work unit copies, so that one huge row still spreads over the cores.</summary>
    private const long MaxBlockBytes = 256 * 1024;

    /// <summary>Copies <paramref name="rows"/> rows of <paramref name="rowBytes"/> bytes from rows
    /// <paramref name="srcStride"/> bytes apart to rows <paramref name="dstStride"/> bytes apart.</summary>
    public static void CopyRows(byte* src, long srcStride, byte* dst, long dstStride, long rows, long rowBytes)
    {
        if (rows == 0 || rowBytes == 0) return;
        long blocksPerRow = (rowBytes + MaxBlockBytes - 1) / MaxBlockBytes;
        long blockBytes = (rowBytes + blocksPerRow - 1) / blocksPerRow;
        CpuParallel.For(rows * blocksPerRow, Math.Max(1, MinParallelBytes / blockBytes), (start, end) =>
        {
            for (long unit = start; unit < end; unit++)
            {
                long row = blocksPerRow == 1 ? unit : unit / blocksPerRow;
                long offset = (unit - row * blocksPerRow) * blockBytes;
                long bytes = Math.Min(blockBytes, rowBytes - offset);
                Buffer.MemoryCopy(src + row * srcStride + offset, dst + row * dstStride + offset, bytes, bytes);
            }
        });
    }
}
