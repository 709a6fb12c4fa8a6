using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<EmbeddingOp>
{
    public unsafe void Execute(EmbeddingOp op, in KernelArgs args)
    {
        var ids = args.Input(0);
        var table = args.Input(1);
        long count = ids.ElementCount;
        int vocabulary = table.Dim(0);
        bool wide = ids.DType == DType.I64;
        int* ids32 = ids.Ptr<int>();
        long* ids64 = ids.Ptr<long>();
        // Checked up front, on this thread, so a bad id is a clear exception instead of a read outside the table.
        for (long i = 0; i < count; i++)
        {
            long id = wide ? ids64[i] : ids32[i];
            if ((ulong)id >= (ulong)vocabulary)
                throw new ArgumentOutOfRangeException("ids",
                    $"{op.Name}: id {id} at position {i} of ids {ids.Shape} is outside the table of V = {vocabulary} rows {table}");
        }
        long rowBytes = (long)table.Dim(1) * table.DType.Size();
        if (rowBytes == 0) return;
        byte* rows = (byte*)table.Data;
        byte* dst = (byte*)args.Output.Data;
        CpuParallel.For(count, Math.Max(1, DataMovement.MinParallelBytes / rowBytes), (start, end) =>
        {
            for (long i = start; i < end; i++)
            {
                long id = wide ? ids64[i] : ids32[i];
                Buffer.MemoryCopy(rows + id * rowBytes, dst + i * rowBytes, rowBytes, rowBytes);
            }
        });
    }
}
