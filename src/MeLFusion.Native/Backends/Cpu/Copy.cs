using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<CopyOp>
{
    public unsafe void Execute(CopyOp op, in KernelArgs args)
    {
        var src = args.Input(0);
        var dst = args.Output;
        if (src.ElementCount == 0) return;
        int elementSize = src.DType.Size();
        var layout = StridedLayout.Coalesce(src.Shape);
        byte* s = (byte*)src.Data;
        byte* d = (byte*)dst.Data;
        int last = layout.Rank - 1;
        if (layout.Strides[last] == 1)
        {
            long rowBytes = (long)layout.Dims[last] * elementSize;
            if (layout.Rank == 1)
                DataMovement.CopyRows(s, rowBytes, d, rowBytes, 1, rowBytes);
            else
                StridedCopy.Rows(layout, s, d, elementSize);
            return;
        }
        switch (elementSize)
        {
            case 2: StridedCopy.Elements<ushort>(layout, (ushort*)s, (ushort*)d); break;
            case 4: StridedCopy.Elements<uint>(layout, (uint*)s, (uint*)d); break;
            default: StridedCopy.Elements<ulong>(layout, (ulong*)s, (ulong*)d); break;
        }
    }
}

/// <summary>
/// A strided source view reduced to its simplest form: size-1 dims dropped and neighbouring dims merged where one
/// steps exactly over the other, so a permuted contiguous tensor becomes a transpose of at most a few dims.
/// The destination is contiguous in these dims.
/// </summary>
internal sealed class StridedLayout
{
    private StridedLayout(int[] dims, long[] strides)
    {
        Dims = dims;
        Strides = strides;
    }

    public int[] Dims { get; }
    /// <summary>Source strides in elements.</summary>
    public long[] Strides { get; }
    public int Rank => Dims.Length;

    public static StridedLayout Coalesce(TensorShape shape)
    {
        var dims = new List<int>(shape.Rank);
        var strides = new List<long>(shape.Rank);
        for (int a = 0; a < shape.Rank; a++)
        {
            if (shape[a] == 1) continue;
            int top = dims.Count - 1;
            if (top >= 0 && strides[top] == shape.Strides[a] * shape[a])
            {
                dims[top] *= shape[a];
                strides[top] = shape.Strides[a];
            }
            else
            {
                dims.Add(shape[a]);
                strides.Add(shape.Strides[a]);
            }
        }
        if (dims.Count == 0)
        {
            dims.Add(1);
            strides.Add(1);
        }
        return new StridedLayout([.. dims], [.. strides]);
    }

    /// <summary>Source element offset of destination index <paramref name="flat"/> counted over
    /// <paramref name="axes"/> (outer to inner), leaving each axis' index in <paramref name="index"/>.</summary>
    public long Offset(long flat, ReadOnlySpan<int> axes, Span<int> index)
    {
        long offset = 0;
        for (int i = axes.Length - 1; i >= 0; i--)
        {
            int a = axes[i];
            long q = flat / Dims[a];
            index[i] = (int)(flat - q * Dims[a]);
            offset += index[i] * Strides[a];
            flat = q;
        }
        return offset;
    }

    /// <summary>Steps <paramref name="index"/> over <paramref name="axes"/> like an odometer; returns the source offset change.</summary>
    public long Advance(ReadOnlySpan<int> axes, Span<int> index)
    {
        long delta = 0;
        for (int i = axes.Length - 1; i >= 0; i--)
        {
            int a = axes[i];
            delta += Strides[a];
            if (++index[i] < Dims[a]) return delta;
            delta -= Dims[a] * Strides[a];
            index[i] = 0;
        }
        return delta;
    }
}

/// <summary>Gathers a <see cref="StridedLayout"/> into contiguous memory on all cores.</summary>
internal static unsafe class StridedCopy
{
    /// <summary>Side of the square tiles a transpose moves through the cache: 64 bytes of 4-byte elements.</summary>
    private const int Tile = 16;

    /// <summary>Innermost dim contiguous in the source: one block copy per destination row.</summary>
    public static void Rows(StridedLayout layout, byte* src, byte* dst, int elementSize)
    {
        int last = layout.Rank - 1;
        long rowBytes = (long)layout.Dims[last] * elementSize;
        long rows = 1;
        for (int a = 0; a < last; a++) rows *= layout.Dims[a];
        int[] outerAxes = Enumerable.Range(0, last).ToArray();
        CpuParallel.For(rows, Math.Max(1, DataMovement.MinParallelBytes / rowBytes), (start, end) =>
        {
            Span<int> index = stackalloc int[outerAxes.Length];
            long offset = layout.Offset(start, outerAxes, index) * elementSize;
            for (long row = start; row < end; row++)
            {
                Buffer.MemoryCopy(src + offset, dst + row * rowBytes, rowBytes, rowBytes);
                offset += layout.Advance(outerAxes, index) * elementSize;
            }
        });
    }

    /// <summary>
    /// Innermost dim strided in the source. When another dim is contiguous there (a permute), the two form a
    /// transpose done in cache-sized tiles: reads run along that dim, writes along the innermost. Otherwise
    /// every element is gathered on its own.
    /// </summary>
    public static void Elements<T>(StridedLayout layout, T* src, T* dst) where T : unmanaged
    {
        int last = layout.Rank - 1;
        int unit = Array.IndexOf(layout.Strides, 1L);
        if (unit < 0) unit = last;
        // Destination stride of the source-contiguous dim ("unit"), in elements.
        long unitDstStride = 1;
        for (int a = unit + 1; a <= last; a++) unitDstStride *= layout.Dims[a];
        int[] outerAxes = Enumerable.Range(0, last).Where(a => a != unit).ToArray();
        long[] outerDstStrides = outerAxes.Select(a => DestinationStride(layout, a)).ToArray();
        int unitLength = unit == last ? 1 : layout.Dims[unit];
        int width = layout.Dims[last];
        long strideAlongRow = layout.Strides[last];
        long strips = (unitLength + Tile - 1) / Tile;
        long outerCount = 1;
        foreach (int a in outerAxes) outerCount *= layout.Dims[a];
        long stripElements = (long)Math.Min(Tile, unitLength) * width;
        CpuParallel.For(outerCount * strips, Math.Max(1, DataMovement.MinParallelBytes / (stripElements * sizeof(T))), (start, end) =>
        {
            Span<int> index = stackalloc int[outerAxes.Length];
            for (long job = start; job < end; job++)
            {
                long outer = job / strips;
                int first = (int)(job - outer * strips) * Tile;
                int rows = Math.Min(Tile, unitLength - first);
                long srcOffset = layout.Offset(outer, outerAxes, index) + first;
                long dstOffset = first * unitDstStride;
                for (int i = 0; i < outerAxes.Length; i++) dstOffset += index[i] * outerDstStrides[i];
                TransposeStrip(src + srcOffset, strideAlongRow, dst + dstOffset, unitDstStride, rows, width);
            }
        });
    }

    /// <summary>dst[r·dstRowStride + j] = src[r + j·srcStride] for r &lt; rows, j &lt; width, tile by tile.</summary>
    private static void TransposeStrip<T>(T* src, long srcStride, T* dst, long dstRowStride, int rows, int width) where T : unmanaged
    {
        for (int j0 = 0; j0 < width; j0 += Tile)
        {
            int j1 = Math.Min(width, j0 + Tile);
            for (int r = 0; r < rows; r++)
            {
                T* d = dst + r * dstRowStride;
                T* s = src + r;
                for (int j = j0; j < j1; j++) d[j] = s[j * srcStride];
            }
        }
    }

    private static long DestinationStride(StridedLayout layout, int axis)
    {
        long stride = 1;
        for (int a = axis + 1; a < layout.Rank; a++) stride *= layout.Dims[a];
        return stride;
    }
}
