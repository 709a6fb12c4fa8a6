using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cuda;

/// <summary>
/// One run of an <see cref="ExecutionPlan"/> recorded as a CUDA graph (<see cref="CudaBackend.CaptureGraph"/>): every
/// kernel launch and cuBLAS call of the plan, replayed with one cuGraphLaunch. The graph reads and writes the plan's
/// own memory, so the usual <see cref="ExecutionPlan.SetInput{T}"/> / <see cref="ExecutionPlan.ReadOutput{T}(string)"/>
/// surround <see cref="Run"/>. The plan and the backend must outlive the graph.
/// </summary>
public sealed class CudaGraph : IDisposable
{
    private readonly CudaBackend _backend;
    private nint _graph;
    private nint _executable;

    internal CudaGraph(CudaBackend backend, nint graph, nint executable)
    {
        _backend = backend;
        _graph = graph;
        _executable = executable;
    }

    /// <summary>Replays the plan and waits for it; reports errors kernels recorded, like <see cref="ExecutionPlan.Run"/>.</summary>
    public void Run()
    {
        Enqueue();
        _backend.Synchronize();
    }

    /// <summary>
    /// Average GPU time of one replay in milliseconds over <paramref name="replays"/> back-to-back replays, measured with
    /// events on the backend's stream (no host gaps between replays).
    /// </summary>
    public float Time(int replays)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replays, 1);
        return _backend.TimeMilliseconds(() =>
        {
            for (int i = 0; i < replays; i++) Enqueue();
        }) / replays;
    }

    public void Dispose()
    {
        if (_executable != 0) CudaDriver.Check(CudaDriver.cuGraphExecDestroy(_executable), "cuGraphExecDestroy");
        if (_graph != 0) CudaDriver.Check(CudaDriver.cuGraphDestroy(_graph), "cuGraphDestroy");
        _executable = _graph = 0;
    }

    private void Enqueue()
    {
        ObjectDisposedException.ThrowIf(_executable == 0, this);
        _backend.LaunchGraph(_executable);
    }
}

public sealed partial class CudaBackend
{
    /// <summary>
    /// Records one run of <paramref name="plan"/> (compiled for this backend) as a CUDA graph after a warm-up run, so that
    /// first-use work (cuBLAS heuristics, device records) stays out of the graph. Replaying it costs one launch instead of
    /// one per kernel. Only kernel launches may happen during the run: copies, allocations and synchronisation throw.
    /// </summary>
    public CudaGraph CaptureGraph(ExecutionPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (!ReferenceEquals(plan.Backend, this))
            throw new ArgumentException($"the plan was compiled for backend '{plan.Backend.Name}', not this cuda backend", nameof(plan));
        plan.Run();
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamBeginCapture(_stream, CudaDriver.StreamCaptureMode.ThreadLocal), "cuStreamBeginCapture");
        _capturing = true;
        try
        {
            plan.Run();
        }
        catch
        {
            _capturing = false;
            if (CudaDriver.cuStreamEndCapture(_stream, out nint broken) == CudaResult.Success && broken != 0)
                CudaDriver.cuGraphDestroy(broken);
            throw;
        }
        _capturing = false;
        CudaDriver.Check(CudaDriver.cuStreamEndCapture(_stream, out nint graph), "cuStreamEndCapture");
        var result = CudaDriver.cuGraphInstantiateWithFlags(out nint executable, graph, 0);
        if (result != CudaResult.Success)
        {
            CudaDriver.cuGraphDestroy(graph);
            CudaDriver.Check(result, "cuGraphInstantiateWithFlags");
        }
        return new CudaGraph(this, graph, executable);
    }

    /// <summary>
    /// GPU time in milliseconds of the work <paramref name="enqueue"/> queues on this backend's stream, between two
    /// events; waits for it. <paramref name="enqueue"/> must not synchronise (e.g. replay a <see cref="CudaGraph"/>).
    /// </summary>
    public float TimeMilliseconds(Action enqueue)
    {
        ArgumentNullException.ThrowIfNull(enqueue);
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuEventCreate(out nint start, 0), "cuEventCreate");
        try
        {
            CudaDriver.Check(CudaDriver.cuEventCreate(out nint end, 0), "cuEventCreate");
            try
            {
                CudaDriver.Check(CudaDriver.cuEventRecord(start, _stream), "cuEventRecord");
                enqueue();
                CudaDriver.Check(CudaDriver.cuEventRecord(end, _stream), "cuEventRecord");
                CudaDriver.Check(CudaDriver.cuEventSynchronize(end), "cuEventSynchronize");
                CudaDriver.Check(CudaDriver.cuEventElapsedTime(out float milliseconds, start, end), "cuEventElapsedTime");
                return milliseconds;
            }
            finally
            {
                CudaDriver.Check(CudaDriver.cuEventDestroy(end), "cuEventDestroy");
            }
        }
        finally
        {
            CudaDriver.Check(CudaDriver.cuEventDestroy(start), "cuEventDestroy");
        }
    }

    internal void LaunchGraph(nint executable)
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuGraphLaunch(executable, _stream), "cuGraphLaunch");
    }
}
