using System.Runtime.InteropServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/embedding.cu. Ids live in device memory, so they are validated there: embedding_check_* records the first
/// out-of-range id of the earliest failing launch in a device record ({position, id, site}), the gather skips bad ids,
/// and <see cref="Synchronize"/> reads the record and throws. A site is one (op, ids, table) combination, registered
/// on the host when the launch is issued, so the exception names the shapes like the CPU backend's does; sites stay
/// registered, so a replayed CUDA graph reports failures too.
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<EmbeddingOp>
{
    private const int RecordLongs = 3;

    private readonly List<EmbeddingSite> _embeddingSites = [];
    private readonly Dictionary<EmbeddingSite, int> _embeddingSiteIndex = [];
    private DeviceBuffer? _embeddingRecord;

    /// <summary>What an error message needs to know about one embedding launch.</summary>
    private readonly record struct EmbeddingSite(string Op, TensorShape Ids, int Vocabulary, string Table)
    {
        public string Describe(long id, long position) =>
            $"{Op}: id {id} at position {position} of ids {Ids} is outside the table of V = {Vocabulary} rows {Table}";
    }

    public void Execute(EmbeddingOp op, in KernelArgs args)
    {
        Tensor ids = args.Input(0), table = args.Input(1), output = args.Output;
        long count = ids.ElementCount;
        if (count == 0) return;
        int vocabulary = table.Dim(0);
        string idType = ids.DType == DType.I64 ? "i64" : "i32";
        var site = new EmbeddingSite(op.Name, ids.Shape, vocabulary, table.ToString());
        if (!_embeddingSiteIndex.TryGetValue(site, out int siteIndex))
        {
            siteIndex = _embeddingSites.Count;
            _embeddingSites.Add(site);
            _embeddingSiteIndex.Add(site, siteIndex);
        }
        Launch("embedding_check_" + idType, 1, ReductionThreads(count), 0,
            ids, count, (long)vocabulary, EmbeddingRecord().Pointer, (long)siteIndex);

        long rowBytes = (long)table.Dim(1) * table.DType.Size();
        // 4-byte units where rows and both addresses allow (a 16-bit table may be a view at an odd element).
        int unit = (rowBytes | table.Data | output.Data) % 4 == 0 ? 4 : 2;
        LaunchElementwise($"embedding_gather_{idType}_{UnitSuffix(unit)}", count * (rowBytes / unit),
            ids, table, output, count, (long)vocabulary, checked((int)(rowBytes / unit)));
    }

    /// <summary>The device record, allocated and cleared (position -1) at the first embedding launch.</summary>
    private DeviceBuffer EmbeddingRecord()
    {
        if (_embeddingRecord is null)
        {
            _embeddingRecord = Allocate(RecordLongs * sizeof(long), "embedding id check");
            ClearEmbeddingRecord();
        }
        return _embeddingRecord;
    }

    private void ClearEmbeddingRecord()
    {
        ReadOnlySpan<long> cleared = [-1, 0, 0];
        CopyFromHost(MemoryMarshal.AsBytes(cleared), _embeddingRecord!.Pointer);
    }

    /// <summary>After the device is idle: throws for the first bad id any embedding launch recorded, and clears the record.</summary>
    private void ThrowOnRecordedEmbeddingError()
    {
        if (_embeddingRecord is null) return;
        Span<long> record = stackalloc long[RecordLongs];
        CopyToHost(_embeddingRecord.Pointer, MemoryMarshal.AsBytes(record));
        if (record[0] < 0) return;
        ClearEmbeddingRecord();
        throw new ArgumentOutOfRangeException("ids", _embeddingSites[(int)record[2]].Describe(record[1], record[0]));
    }

    private void DisposeEmbeddingRecord()
    {
        _embeddingRecord?.Dispose();
        _embeddingRecord = null;
    }
}
