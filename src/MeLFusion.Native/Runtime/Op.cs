namespace MeLFusion.Native.Runtime;

/// <summary>The dtype and shape of a tensor that does not exist yet.</summary>
public readonly record struct TensorDesc(DType DType, TensorShape Shape)
{
    public long ByteCount => Shape.SpanElements * DType.Size();
    public override string ToString() => $"{DType}{Shape}";
}

/// <summary>
/// One operation in a graph: its parameters, shape inference and memory needs. It does no arithmetic itself; each
/// backend implements <see cref="IKernel{TOp}"/> for the ops it supports.
/// </summary>
public abstract class Op
{
    /// <summary>Name used in errors and profiles, e.g. "conv2d".</summary>
    public abstract string Name { get; }

    /// <summary>Validates the inputs and returns the output's dtype and (contiguous) dims.</summary>
    public abstract TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs);

    /// <summary>
    /// Scratch bytes the op's algorithm needs on every backend (planned in the arena like any intermediate). Scratch
    /// that only one backend's kernel needs is that backend's answer through <see cref="IKernelWorkspace{TOp}"/>.
    /// </summary>
    public virtual long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) => 0;

    /// <summary>The scratch bytes on <paramref name="backend"/>: its kernel's own answer where it gives one.</summary>
    internal abstract long WorkspaceBytesOn(IBackend? backend, ReadOnlySpan<TensorDesc> inputs, TensorDesc output);

    /// <summary>Index of an input whose memory the output may overwrite, or -1. Legal only for same-size outputs.</summary>
    public virtual int InPlaceInput => -1;

    /// <summary>When false, the graph builder copies strided inputs to contiguous ones before this op.</summary>
    public virtual bool AcceptsStridedInputs => false;

    internal abstract BoundNode Bind(IBackend backend, Tensor[] inputs, Tensor output, Tensor workspace);

    protected static Exception Invalid(string op, string message) => new ArgumentException($"{op}: {message}");
}

/// <summary>CRTP base that binds an op to its backend kernel once, at plan time.</summary>
public abstract class Op<TSelf> : Op where TSelf : Op<TSelf>
{
    internal sealed override BoundNode Bind(IBackend backend, Tensor[] inputs, Tensor output, Tensor workspace)
    {
        if (backend is not IKernel<TSelf> kernel)
            throw new NotSupportedException($"backend '{backend.Name}' has no kernel for op '{Name}'");
        return new BoundNode<TSelf>(kernel, (TSelf)this, inputs, output, workspace);
    }

    internal sealed override long WorkspaceBytesOn(IBackend? backend, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        backend is IKernelWorkspace<TSelf> kernel ? kernel.WorkspaceBytes((TSelf)this, inputs, output) : WorkspaceBytes(inputs, output);
}

/// <summary>The arguments of one kernel call: resolved input, output and workspace tensors.</summary>
public readonly struct KernelArgs
{
    private readonly Tensor[] _inputs;

    internal KernelArgs(Tensor[] inputs, Tensor output, Tensor workspace)
    {
        _inputs = inputs;
        Output = output;
        Workspace = workspace;
    }

    public int InputCount => _inputs.Length;
    public Tensor Input(int index) => _inputs[index];
    public Tensor Output { get; }
    /// <summary>Scratch memory of <see cref="Op.WorkspaceBytes"/> bytes (an empty U8-like F32 view when none).</summary>
    public Tensor Workspace { get; }
}

/// <summary>
/// A backend whose kernel for <typeparamref name="TOp"/> needs scratch memory of its own (tiles, packed panels,
/// transforms); the planner reserves it in the arena. Replaces <see cref="Op.WorkspaceBytes"/> on that backend.
/// </summary>
public interface IKernelWorkspace<in TOp> where TOp : Op
{
    long WorkspaceBytes(TOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output);
}

/// <summary>A backend's implementation of <typeparamref name="TOp"/>.</summary>
public interface IKernel<in TOp> where TOp : Op
{
    void Execute(TOp op, in KernelArgs args);
}

internal abstract class BoundNode
{
    public abstract Op Op { get; }
    public abstract void Execute();
}

internal sealed class BoundNode<TOp>(IKernel<TOp> kernel, TOp op, Tensor[] inputs, Tensor output, Tensor workspace)
    : BoundNode where TOp : Op
{
    private readonly KernelArgs _args = new(inputs, output, workspace);
    public override Op Op => op;
    public override void Execute() => kernel.Execute(op, _args);
}
