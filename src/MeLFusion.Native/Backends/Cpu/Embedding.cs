using System.Numerics;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<EmbeddingOp>, IKernel<EmbeddingGradientOp>
{
    public unsafe void Execute(EmbeddingOp op, in KernelArgs args)
    {
        var ids = args.Input(0);
        var table = args.Input(1);
        long count = ids.ElementCount;
        int vocabulary = table.Dim(0);
        CheckIds(op.Name, ids, vocabulary, table);
        long rowBytes = (long)table.Dim(1) * table.DType.Size();
        if (rowBytes == 0) return;
        bool wide = ids.DType == DType.I64;
        int* ids32 = ids.Ptr<int>();
        long* ids64 = ids.Ptr<long>();
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

    /// <summary>
    /// Each worker owns a band of table rows: it clears them, then walks all ids in order and adds dy's rows for the
    /// ids in its band, so every row sums its occurrences in position order whatever the split.
    /// </summary>
    public unsafe void Execute(EmbeddingGradientOp op, in KernelArgs args)
    {
        Tensor ids = args.Input(0), dy = args.Input(1), dtable = args.Output;
        long count = ids.ElementCount;
        int vocabulary = op.Vocabulary, width = dtable.Dim(1);
        CheckIds(op.Name, ids, vocabulary, dtable);
        if (width == 0) return;
        bool wide = ids.DType == DType.I64;
        int* ids32 = ids.Ptr<int>();
        long* ids64 = ids.Ptr<long>();
        float* rows = dy.Ptr<float>();
        float* table = dtable.Ptr<float>();
        // Every band repeats the scan of all ids, so bands are made wide enough that clearing their rows outweighs it.
        long minBand = Math.Max(1, (count + DataMovement.MinParallelBytes / sizeof(float)) / width);
        CpuParallel.For(vocabulary, minBand, (first, end) =>
        {
            new Span<float>(table + first * width, checked((int)((end - first) * width))).Clear();
            for (long i = 0; i < count; i++)
            {
                long id = wide ? ids64[i] : ids32[i];
                if (id < first || id >= end) continue;
                AddRow(table + id * width, rows + i * width, width);
            }
        });
    }

    /// <summary>destination += source over <paramref name="width"/> floats.</summary>
    private static unsafe void AddRow(float* destination, float* source, int width)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
            for (; j <= width - Vector<float>.Count; j += Vector<float>.Count)
                (Vector.Load(destination + j) + Vector.Load(source + j)).Store(destination + j);
        for (; j < width; j++) destination[j] += source[j];
    }

    /// <summary>
    /// Checked up front, on this thread, so a bad id is a clear exception instead of an access outside the table.
    /// </summary>
    private static unsafe void CheckIds(string op, Tensor ids, int vocabulary, Tensor table)
    {
        bool wide = ids.DType == DType.I64;
        int* ids32 = ids.Ptr<int>();
        long* ids64 = ids.Ptr<long>();
        for (long i = 0; i < ids.ElementCount; i++)
        {
            long id = wide ? ids64[i] : ids32[i];
            if ((ulong)id >= (ulong)vocabulary)
                throw new ArgumentOutOfRangeException("ids",
                    $"{op}: id {id} at position {i} of ids {ids.Shape} is outside the table of V = {vocabulary} rows {table}");
        }
    }
}
