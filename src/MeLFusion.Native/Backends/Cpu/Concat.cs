using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<ConcatOp>
{
    public unsafe void Execute(ConcatOp op, in KernelArgs args)
    {
        var output = args.Output;
        int axis = op.ResolveAxis(output.Rank);
        // Seen as [outer, bytes]: each part fills a column band of every output row.
        long outer = 1;
        for (int a = 0; a < axis; a++) outer *= output.Dim(a);
        if (outer == 0) return;
        long outputRowBytes = output.ByteCount / outer;
        long column = 0;
        for (int p = 0; p < args.InputCount; p++)
        {
            var part = args.Input(p);
            long partRowBytes = part.ByteCount / outer;
            DataMovement.CopyRows((byte*)part.Data, partRowBytes, (byte*)output.Data + column, outputRowBytes, outer, partRowBytes);
            column += partRowBytes;
        }
    }
}
