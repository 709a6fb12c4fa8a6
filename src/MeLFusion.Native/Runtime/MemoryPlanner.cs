namespace MeLFusion.Native.Runtime;

/// <summary>Where every value of a graph lives in the arena, and how much arena that takes.</summary>
public sealed class MemoryPlan
{
    internal MemoryPlan(long[] valueOffsets, long[] workspaceOffsets, long[] workspaceBytes, long arenaBytes, long unsharedBytes, long peakLiveBytes)
    {
        WorkspaceBytes = workspaceBytes;
        ValueByteOffsets = valueOffsets;
        WorkspaceByteOffsets = workspaceOffsets;
        ArenaBytes = arenaBytes;
        UnsharedBytes = unsharedBytes;
        PeakLiveBytes = peakLiveBytes;
    }

    /// <summary>Byte offset of each root value's storage, by value id (-1 for constants and views).</summary>
    public IReadOnlyList<long> ValueByteOffsets { get; }
    /// <summary>Byte offset of each node's workspace, by node index (-1 when it needs none).</summary>
    public IReadOnlyList<long> WorkspaceByteOffsets { get; }
    /// <summary>Scratch bytes of each node's workspace, by node index.</summary>
    public IReadOnlyList<long> WorkspaceBytes { get; }
    /// <summary>Size of the single arena that holds inputs, outputs, intermediates and workspaces.</summary>
    public long ArenaBytes { get; }
    /// <summary>What the arena would need if nothing shared memory: the sum of all storages.</summary>
    public long UnsharedBytes { get; }
    /// <summary>The largest total of storages alive at one node: a lower bound for any plan.</summary>
    public long PeakLiveBytes { get; }

    public override string ToString() =>
        $"arena {ArenaBytes / 1048576.0:F2} MiB (unshared {UnsharedBytes / 1048576.0:F2} MiB, live peak {PeakLiveBytes / 1048576.0:F2} MiB)";
}

/// <summary>
/// Assigns every intermediate an arena offset by liveness. Outputs reuse an input's storage in place when the op
/// allows it and that input dies at the op; storages are then placed greedily by size (largest first, lowest
/// offset that does not collide with a storage alive at the same time), which stays close to the live peak.
/// Graph inputs and outputs are pinned: alive for the whole run.
/// </summary>
public static class MemoryPlanner
{
    public const int Alignment = 256;

    /// <summary>Plans <paramref name="graph"/>; workspaces are sized for <paramref name="backend"/>'s kernels (the ops' own sizes when null).</summary>
    public static MemoryPlan Plan(GraphBuilder graph, IBackend? backend = null)
    {
        var values = graph.Values;
        var nodes = graph.Nodes;
        int last = nodes.Count; // "end of run" for pinned storages

        // Storage owner per value after in-place merges (union-find over root values).
        var owner = new int[values.Count];
        for (int i = 0; i < owner.Length; i++) owner[i] = i;
        int Find(int v) { while (owner[v] != v) v = owner[v] = owner[owner[v]]; return v; }

        var pinned = new HashSet<int>();
        foreach (var v in graph.Inputs.Values) pinned.Add(v.Id);
        foreach (var v in graph.Outputs.Values) pinned.Add(v.Id);

        // Last node that reads each root value (directly or through a view).
        var lastUse = new int[values.Count];
        var firstDef = new int[values.Count];
        Array.Fill(lastUse, -1);
        Array.Fill(firstDef, -1);
        foreach (var node in nodes)
        {
            firstDef[node.Output.Id] = node.Index;
            foreach (var input in node.Inputs)
                lastUse[input.Root.Id] = Math.Max(lastUse[input.Root.Id], node.Index);
        }

        // End of life of each storage, extended as outputs merge into it.
        var storageEnd = new int[values.Count];
        for (int i = 0; i < storageEnd.Length; i++) storageEnd[i] = Math.Max(lastUse[i], firstDef[i]);
        foreach (var node in nodes)
        {
            int k = node.Op.InPlaceInput;
            if (k < 0 || pinned.Contains(node.Output.Id)) continue;
            var input = node.Inputs[k];
            var root = input.Root;
            int storage = Find(root.Id);
            bool legal = root.Kind == ValueKind.Intermediate
                && !pinned.Contains(storage)
                && input.Shape.IsContiguous
                && input.RootElementOffset == 0
                && input.Desc.ByteCount == node.Output.Desc.ByteCount
                && storageEnd[storage] == node.Index
                && node.Inputs.Count(i => i.Root == root) == 1;
            if (!legal) continue;
            owner[node.Output.Id] = storage;
            storageEnd[storage] = Math.Max(storageEnd[storage], storageEnd[node.Output.Id]);
        }

        // Collect storages: one per owner root, plus one workspace per node that needs scratch.
        var storages = new List<Storage>();
        var storageOf = new Dictionary<int, Storage>();
        foreach (var v in values)
        {
            if (v.Kind is not (ValueKind.Input or ValueKind.Intermediate)) continue;
            int o = Find(v.Id);
            long bytes = v.Desc.ByteCount;
            int start = v.Kind == ValueKind.Input ? 0 : firstDef[v.Id];
            int end = Math.Max(start, lastUse[v.Id]);
            if (pinned.Contains(v.Id)) { start = 0; end = last; }
            if (!storageOf.TryGetValue(o, out var s))
            {
                s = new Storage(start, end, bytes);
                storageOf.Add(o, s);
                storages.Add(s);
            }
            else
            {
                s.Start = Math.Min(s.Start, start);
                s.End = Math.Max(s.End, end);
                s.Bytes = Math.Max(s.Bytes, bytes);
            }
        }

        var workspaceStorage = new Storage?[nodes.Count];
        var workspaceBytes = new long[nodes.Count];
        foreach (var node in nodes)
        {
            var inputs = node.Inputs.Select(i => i.Desc).ToArray();
            long ws = workspaceBytes[node.Index] = node.Op.WorkspaceBytesOn(backend, inputs, node.Output.Desc);
            if (ws <= 0) continue;
            var s = new Storage(node.Index, node.Index, ws);
            workspaceStorage[node.Index] = s;
            storages.Add(s);
        }

        long arena = PlaceGreedyBySize(storages);

        var valueOffsets = new long[values.Count];
        Array.Fill(valueOffsets, -1L);
        foreach (var v in values)
            if (v.Kind is ValueKind.Input or ValueKind.Intermediate)
                valueOffsets[v.Id] = storageOf[Find(v.Id)].Offset;
        var workspaceOffsets = workspaceStorage.Select(s => s?.Offset ?? -1L).ToArray();

        long unshared = storages.Sum(s => AlignUp(s.Bytes));
        long peak = 0;
        for (int t = 0; t <= last; t++)
            peak = Math.Max(peak, storages.Where(s => s.Start <= t && t <= s.End).Sum(s => AlignUp(s.Bytes)));
        return new MemoryPlan(valueOffsets, workspaceOffsets, workspaceBytes, arena, unshared, peak);
    }

    private static long PlaceGreedyBySize(List<Storage> storages)
    {
        var order = storages.OrderByDescending(s => s.Bytes).ThenBy(s => s.Start).ToList();
        var placed = new List<Storage>(order.Count);
        var conflicts = new List<Storage>();
        long arena = 0;
        foreach (var s in order)
        {
            conflicts.Clear();
            foreach (var p in placed)
                if (p.Start <= s.End && s.Start <= p.End) conflicts.Add(p);
            conflicts.Sort((a, b) => a.Offset.CompareTo(b.Offset));
            long offset = 0;
            long size = AlignUp(s.Bytes);
            foreach (var c in conflicts)
            {
                if (offset + size <= c.Offset) break;
                offset = Math.Max(offset, c.Offset + AlignUp(c.Bytes));
            }
            s.Offset = offset;
            placed.Add(s);
            arena = Math.Max(arena, offset + size);
        }
        return arena;
    }

    private static long AlignUp(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;

    private sealed class Storage(int start, int end, long bytes)
    {
        public int Start = start;
        public int End = end;
        public long Bytes = bytes;
        public long Offset;
    }
}
