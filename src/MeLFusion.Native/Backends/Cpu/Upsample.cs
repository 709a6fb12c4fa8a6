using System.Runtime.Intrinsics;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<UpsampleNearest2xOp>
{
    public unsafe void Execute(UpsampleNearest2xOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        int width = x.Dim(3);
        if (x.ElementCount == 0) return;
        long rows = x.ElementCount / width;
        int elementSize = x.DType.Size();
        byte* src = (byte*)x.Data;
        byte* dst = (byte*)args.Output.Data;
        long srcRowBytes = (long)width * elementSize;
        // Each input row becomes two identical output rows of doubled width, written straight from registers.
        CpuParallel.For(rows, Math.Max(1, DataMovement.MinParallelBytes / (4 * srcRowBytes)), (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                byte* s = src + row * srcRowBytes;
                byte* top = dst + row * 4 * srcRowBytes;
                byte* bottom = top + 2 * srcRowBytes;
                if (elementSize == 4)
                    NearestUpsample.Repeat2x32((uint*)s, (uint*)top, (uint*)bottom, width);
                else
                    NearestUpsample.Repeat2x16((ushort*)s, (uint*)top, (uint*)bottom, width);
            }
        });
    }
}

/// <summary>Row kernels that repeat every element twice, into two destination rows at once.</summary>
internal static unsafe class NearestUpsample
{
    /// <summary>4-byte elements: a lane shuffle duplicates each element in place.</summary>
    public static void Repeat2x32(uint* src, uint* top, uint* bottom, int width)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var lowHalf = Vector512.Create(0u, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
            var highHalf = Vector512.Create(8u, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
            for (; i <= width - Vector512<uint>.Count; i += Vector512<uint>.Count)
            {
                var v = Vector512.Load(src + i);
                var low = Vector512.Shuffle(v, lowHalf);
                var high = Vector512.Shuffle(v, highHalf);
                low.Store(top + 2 * i);
                high.Store(top + 2 * i + Vector512<uint>.Count);
                low.Store(bottom + 2 * i);
                high.Store(bottom + 2 * i + Vector512<uint>.Count);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var lowHalf = Vector256.Create(0u, 0, 1, 1, 2, 2, 3, 3);
            var highHalf = Vector256.Create(4u, 4, 5, 5, 6, 6, 7, 7);
            for (; i <= width - Vector256<uint>.Count; i += Vector256<uint>.Count)
            {
                var v = Vector256.Load(src + i);
                var low = Vector256.Shuffle(v, lowHalf);
                var high = Vector256.Shuffle(v, highHalf);
                low.Store(top + 2 * i);
                high.Store(top + 2 * i + Vector256<uint>.Count);
                low.Store(bottom + 2 * i);
                high.Store(bottom + 2 * i + Vector256<uint>.Count);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= width - Vector128<uint>.Count; i += Vector128<uint>.Count)
            {
                var v = Vector128.Load(src + i);
                var low = Vector128.Shuffle(v, Vector128.Create(0u, 0, 1, 1));
                var high = Vector128.Shuffle(v, Vector128.Create(2u, 2, 3, 3));
                low.Store(top + 2 * i);
                high.Store(top + 2 * i + Vector128<uint>.Count);
                low.Store(bottom + 2 * i);
                high.Store(bottom + 2 * i + Vector128<uint>.Count);
            }
        }
        for (; i < width; i++)
        {
            uint v = src[i];
            top[2 * i] = top[2 * i + 1] = bottom[2 * i] = bottom[2 * i + 1] = v;
        }
    }

    /// <summary>2-byte elements: widening each to 32 bits and or-ing in a 16-bit shifted copy writes it twice.</summary>
    public static void Repeat2x16(ushort* src, uint* top, uint* bottom, int width)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= width - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
            {
                var (low, high) = Vector512.Widen(Vector512.Load(src + i));
                low |= low << 16;
                high |= high << 16;
                low.Store(top + i);
                high.Store(top + i + Vector512<uint>.Count);
                low.Store(bottom + i);
                high.Store(bottom + i + Vector512<uint>.Count);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= width - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var (low, high) = Vector256.Widen(Vector256.Load(src + i));
                low |= low << 16;
                high |= high << 16;
                low.Store(top + i);
                high.Store(top + i + Vector256<uint>.Count);
                low.Store(bottom + i);
                high.Store(bottom + i + Vector256<uint>.Count);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            for (; i <= width - Vector128<ushort>.Count; i += Vector128<ushort>.Count)
            {
                var (low, high) = Vector128.Widen(Vector128.Load(src + i));
                low |= low << 16;
                high |= high << 16;
                low.Store(top + i);
                high.Store(top + i + Vector128<uint>.Count);
                low.Store(bottom + i);
                high.Store(bottom + i + Vector128<uint>.Count);
            }
        }
        for (; i < width; i++)
        {
            uint v = src[i];
            top[i] = bottom[i] = v | (v << 16);
        }
    }
}
