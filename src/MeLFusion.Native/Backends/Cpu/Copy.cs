using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<CopyOp>
{
    public unsafe void Execute(CopyOp op, in KernelArgs args)
    {
        var src = args.Input(0);
        var dst = args.Output;
        int elementSize = src.DType.Size();
        int rank = src.Rank;
        if (rank == 0 || src.IsContiguous)
        {
            Buffer.MemoryCopy((void*)src.Data, (void*)dst.Data, dst.ByteCount, dst.ElementCount * elementSize);
            return;
        }
        // Copy rows of the innermost dim; outer indices walk the source strides.
        int inner = src.Dim(rank - 1);
        long innerStride = src.Shape.Strides[rank - 1];
        long rows = src.ElementCount / Math.Max(1, inner);
        var dims = src.Shape.Dims.ToArray();
        var strides = src.Shape.Strides.ToArray();
        byte* s0 = (byte*)src.Data;
        byte* d0 = (byte*)dst.Data;
        CpuParallel.For(rows, 64, (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                long rem = row, offset = 0;
                for (int a = rank - 2; a >= 0; a--)
                {
                    offset += rem % dims[a] * strides[a];
                    rem /= dims[a];
                }
                byte* s = s0 + offset * elementSize;
                byte* d = d0 + row * inner * elementSize;
                if (innerStride == 1)
                    Buffer.MemoryCopy(s, d, (long)inner * elementSize, (long)inner * elementSize);
                else
                    for (int i = 0; i < inner; i++)
                        Buffer.MemoryCopy(s + i * innerStride * elementSize, d + (long)i * elementSize, elementSize, elementSize);
            }
        });
    }
}
