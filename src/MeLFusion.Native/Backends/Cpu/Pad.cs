using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<Pad2dOp>
{
    public unsafe void Execute(Pad2dOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var y = args.Output;
        int elementSize = x.DType.Size();
        int h = x.Dim(-2), w = x.Dim(-1), outH = y.Dim(-2), outW = y.Dim(-1);
        long planes = h == 0 || w == 0 ? y.ElementCount / Math.Max(1, (long)outH * outW) : x.ElementCount / ((long)h * w);
        byte* src = (byte*)x.Data;
        byte* dst = (byte*)y.Data;
        long inRow = (long)w * elementSize, outRow = (long)outW * elementSize, outPlane = outRow * outH;
        CpuParallel.For(planes, 16, (start, end) =>
        {
            for (long p = start; p < end; p++)
            {
                byte* plane = dst + p * outPlane;
                new Span<byte>(plane, (int)(op.Top * outRow)).Clear();
                for (int r = 0; r < h; r++)
                {
                    byte* row = plane + (op.Top + r) * outRow;
                    new Span<byte>(row, op.Left * elementSize).Clear();
                    Buffer.MemoryCopy(src + (p * h + r) * inRow, row + op.Left * elementSize, inRow, inRow);
                    new Span<byte>(row + op.Left * elementSize + inRow, op.Right * elementSize).Clear();
                }
                new Span<byte>(plane + (op.Top + h) * outRow, (int)(op.Bottom * outRow)).Clear();
            }
        });
    }
}
