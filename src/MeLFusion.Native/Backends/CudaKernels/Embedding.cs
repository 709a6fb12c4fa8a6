using System.Runtime.InteropServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/embedding.cu. Ids live in device memory, so they are validated there: embedding_check_* records the first
/// out-of-range id of the earliest failing launch in a device record ({position, id, site}), the gather skips bad ids,
/// and <see cref="Synchronize"/> reads the record and throws. A site is one (op, ids, table) combination, registered
/// on the host when the launch is issued, so the exception names the shapes like the CPU backend's does; sites stay
/// registered, so a replayed CUDA graph reports failures too. The table gradient links equal ids into chains in the
/// workspace and sums each chain in position order (see the kernel file).
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<EmbeddingOp>, IKernel<EmbeddingGradientOp>,
    IKernelWorkspace<EmbeddingGradientOp>
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
        string idType = CheckEmbeddingIds(op.Name, ids, vocabulary, table);

        long rowBytes = (long)table.Dim(1) * table.DType.Size();
        // 4-byte units where rows and both addresses allow (a 16-bit table may be a view at an odd element).
        int unit = (rowBytes | table.Data | output.Data) % 4 == 0 ? 4 : 2;
        LaunchElementwise($"embedding_gather_{idType}_{UnitSuffix(unit)}", count * (rowBytes / unit),
            ids, table, output, count, (long)vocabulary, checked((int)(rowBytes / unit)));
    }

    /// <summary>Per id position: the next position with the same id (a long) and whether it is the first (an int).</summary>
    public long WorkspaceBytes(EmbeddingGradientOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        inputs[0].Shape.ElementCount * (sizeof(long) + sizeof(int));

    public void Execute(EmbeddingGradientOp op, in KernelArgs args)
    {
        Tensor ids = args.Input(0), dy = args.Input(1), dtable = args.Output;
        long count = ids.ElementCount;
        LaunchElementwise("fill_f32", dtable.ElementCount, dtable, dtable.ElementCount, 0f);
        if (count == 0) return;
        string idType = CheckEmbeddingIds(op.Name, ids, op.Vocabulary, dtable);
        nint next = args.Workspace.Data, head = next + (nint)(count * sizeof(long));
        LaunchElementwise("embedding_backward_links_" + idType, count, ids, count, next, head);
        int width = dtable.Dim(1);
        LaunchElementwise("embedding_backward_sum_" + idType, count * width,
            ids, dy, next, head, dtable, count, (long)op.Vocabulary, width);
    }

    /// <summary>
    /// Launches the device-side id check of one embedding launch (registering its site for the error message) and
    /// returns the id type's kernel suffix.
    /// </summary>
    private string CheckEmbeddingIds(string op, Tensor ids, int vocabulary, Tensor table)
    {
        long count = ids.ElementCount;
        var site = new EmbeddingSite(op, ids.Shape, vocabulary, table.ToString());
        if (!_embeddingSiteIndex.TryGetValue(site, out int siteIndex))
        {
            siteIndex = _embeddingSites.Count;
            _embeddingSites.Add(site);
            _embeddingSiteIndex.Add(site, siteIndex);
        }
        string idType = ids.DType == DType.I64 ? "i64" : "i32";
        Launch("embedding_check_" + idType, 1, ReductionThreads(count), 0,
            ids, count, (long)vocabulary, EmbeddingRecord().Pointer, (long)siteIndex);
        return idType;
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
