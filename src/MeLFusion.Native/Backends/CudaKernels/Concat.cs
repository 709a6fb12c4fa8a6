using System.Numerics;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/concat.cu: each part copied into its column band of the output seen as [outer, row bytes].</summary>
public abstract partial class CudaKernelBackend : IKernel<ConcatOp>
{
    /// <summary>Widest unit the concat kernels move: a 16-byte vector.</summary>
    private const int MaxConcatUnit = 16;

    public void Execute(ConcatOp op, in KernelArgs args)
    {
        var output = args.Output;
        int axis = op.ResolveAxis(output.Rank);
        long outer = 1;
        for (int a = 0; a < axis; a++) outer *= output.Dim(a);
        if (outer == 0 || output.ElementCount == 0) return;
        long outputRowBytes = output.ByteCount / outer;
        long column = 0;
        for (int p = 0; p < args.InputCount; p++)
        {
            var part = args.Input(p);
            long partRowBytes = part.ByteCount / outer;
            if (partRowBytes > 0)
            {
                nint destination = output.Data + (nint)column;
                // The widest unit dividing both row lengths, the band's offset and both addresses.
                long common = partRowBytes | outputRowBytes | destination | part.Data | MaxConcatUnit;
                int unit = 1 << BitOperations.TrailingZeroCount(common);
                LaunchElementwise("concat_rows_" + UnitSuffix(unit), outer * (partRowBytes / unit),
                    part, partRowBytes / unit, destination, outputRowBytes / unit, outer, partRowBytes / unit);
            }
            column += partRowBytes;
        }
    }
}
