using System.Runtime.Intrinsics.X86;
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
        int rowBlocks = 0, columnBlocks = 0;
        if (sizeof(T) == 4 && Avx.IsSupported)
        {
            rowBlocks = rows & ~7;
            columnBlocks = width & ~7;
            for (int j = 0; j < columnBlocks; j += 8)
            for (int r = 0; r < rowBlocks; r += 8)
                Transpose8x8((float*)(src + r + j * srcStride), srcStride, (float*)(dst + r * dstRowStride + j), dstRowStride);
        }
        // What the 8x8 blocks left: the bottom rows across the full width, then the right columns of the top rows.
        TransposeScalar(src + rowBlocks, srcStride, dst + rowBlocks * dstRowStride, dstRowStride, rows - rowBlocks, 0, width);
        TransposeScalar(src, srcStride, dst, dstRowStride, rowBlocks, columnBlocks, width);
    }

    private static void TransposeScalar<T>(T* src, long srcStride, T* dst, long dstRowStride, int rows, int firstColumn, int width) where T : unmanaged
    {
        for (int j0 = firstColumn; j0 < width; j0 += Tile)
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

    /// <summary>Transposes an 8x8 block of 4-byte elements in registers: 8 row loads, 24 shuffles, 8 row stores, so
    /// neither side walks memory with a large stride element by element.</summary>
    private static void Transpose8x8(float* src, long srcStride, float* dst, long dstStride)
    {
        var r0 = Avx.LoadVector256(src);
        var r1 = Avx.LoadVector256(src + srcStride);
        var r2 = Avx.LoadVector256(src + 2 * srcStride);
        var r3 = Avx.LoadVector256(src + 3 * srcStride);
        var r4 = Avx.LoadVector256(src + 4 * srcStride);
        var r5 = Avx.LoadVector256(src + 5 * srcStride);
        var r6 = Avx.LoadVector256(src + 6 * srcStride);
        var r7 = Avx.LoadVector256(src + 7 * srcStride);
        // Interleave pairs of rows, then pairs of pairs, within each 128-bit half...
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        // ...then join the halves of rows 0-3 and 4-7.
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }

    private static long DestinationStride(StridedLayout layout, int axis)
    {
        long stride = 1;
        for (int a = axis + 1; a < layout.Rank; a++) stride *= layout.Dims[a];
        return stride;
    }
}
