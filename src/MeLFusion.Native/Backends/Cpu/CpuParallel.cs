namespace MeLFusion.Native.Backends.Cpu;

/// <summary>Splits index ranges over the machine's cores; the one place CPU kernels go parallel.</summary>
public static class CpuParallel
{
    public static int Workers { get; } = Environment.ProcessorCount;

    /// <summary>
    /// Calls <paramref name="body"/>(start, end) over disjoint ranges covering [0, <paramref name="count"/>), each at
    /// least <paramref name="minChunk"/> long (except the last), at most a few per core. Runs inline when one range suffices.
    /// </summary>
    public static void For(long count, long minChunk, Action<long, long> body)
    {
        if (count <= 0) return;
        long chunks = Math.Min(Workers * 4L, Math.Max(1, count / Math.Max(1, minChunk)));
        if (chunks <= 1 || Workers == 1)
        {
            body(0, count);
            return;
        }
        long size = (count + chunks - 1) / chunks;
        chunks = (count + size - 1) / size;
        Parallel.For(0L, chunks, c => body(c * size, Math.Min(count, (c + 1) * size)));
    }
}
