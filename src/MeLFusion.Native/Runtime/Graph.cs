namespace MeLFusion.Native.Runtime;

public enum ValueKind
{
    /// <summary>Written by the caller before each run; pinned in the arena.</summary>
    Input,
    /// <summary>Existing backend memory (weights); never part of the arena.</summary>
    Constant,
    /// <summary>Produced by a node; placed in the arena by liveness.</summary>
    Intermediate,
    /// <summary>A view (permute, slice, reshape) of another value's memory.</summary>
    View,
}

/// <summary>A tensor in a graph: where it comes from, its dtype and strided shape.</summary>
public sealed class Value
{
    internal Value(int id, ValueKind kind, TensorDesc desc, string? name)
    {
        Id = id;
        Kind = kind;
        Desc = desc;
        Name = name;
    }

    public int Id { get; }
    public ValueKind Kind { get; }
    public TensorDesc Desc { get; }
    public string? Name { get; }
    public DType DType => Desc.DType;
    public TensorShape Shape => Desc.Shape;

    /// <summary>The node that writes this value (intermediates only).</summary>
    public Node? Producer { get; internal set; }
    /// <summary>For views: the viewed value and the element offset into it.</summary>
    public Value? ViewOf { get; internal init; }
    public long ViewElementOffset { get; internal init; }
    /// <summary>For constants: the backend tensor.</summary>
    public Tensor? Constant { get; internal init; }

    /// <summary>The value that owns the memory this one lives in.</summary>
    public Value Root => ViewOf?.Root ?? this;
    public long RootElementOffset => ViewOf is null ? 0 : ViewOf.RootElementOffset + ViewElementOffset;

    public override string ToString() => $"%{Id}{(Name is null ? "" : " " + Name)} {Desc}";
}

public sealed class Node
{
    internal Node(int index, Op op, Value[] inputs, Value output, int segment)
    {
        Index = index;
        Op = op;
        Inputs = inputs;
        Output = output;
        Segment = segment;
    }

    /// <summary>Position in execution order.</summary>
    public int Index { get; }
    public Op Op { get; }
    public IReadOnlyList<Value> Inputs { get; }
    public Value Output { get; }

    /// <summary>The gradient-checkpointing segment the node was built in (see <see cref="GraphBuilder.Checkpoint"/>), or -1.</summary>
    public int Segment { get; }

    public override string ToString() => $"{Output} = {Op.Name}({string.Join(", ", Inputs.Select(i => "%" + i.Id))})";
}

/// <summary>
/// Builds a graph once per input shape. Ops are appended in execution order; models call the op-family extension
/// methods (<c>g.Conv2d(...)</c>, <c>g.GroupNorm(...)</c>) that wrap <see cref="Apply"/>.
/// </summary>
public sealed class GraphBuilder
{
    private readonly List<Value> _values = [];
    private readonly List<Node> _nodes = [];
    private readonly Dictionary<string, Value> _inputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Value> _outputs = new(StringComparer.Ordinal);
    private int _segment = -1;
    private int _segments;

    public IReadOnlyList<Node> Nodes => _nodes;
    public IReadOnlyList<Value> Values => _values;
    public IReadOnlyDictionary<string, Value> Inputs => _inputs;
    public IReadOnlyDictionary<string, Value> Outputs => _outputs;

    public Value Input(string name, DType dtype, params int[] dims)
    {
        if (_inputs.ContainsKey(name)) throw new ArgumentException($"graph input '{name}' declared twice");
        var v = Add(ValueKind.Input, new TensorDesc(dtype, new TensorShape(dims)), name);
        _inputs.Add(name, v);
        return v;
    }

    /// <summary>Wraps existing backend memory (a weight) as a graph value.</summary>
    public Value Constant(string name, Tensor tensor)
    {
        var v = new Value(_values.Count, ValueKind.Constant, new TensorDesc(tensor.DType, tensor.Shape), name) { Constant = tensor };
        _values.Add(v);
        return v;
    }

    /// <summary>Marks <paramref name="value"/> as a graph output; its memory is pinned and readable after a run.</summary>
    public Value Output(string name, Value value)
    {
        if (_outputs.ContainsKey(name)) throw new ArgumentException($"graph output '{name}' declared twice");
        if (value.Kind != ValueKind.Intermediate || _outputs.ContainsValue(value))
            value = Contiguous(value, force: true);
        _outputs.Add(name, value);
        return value;
    }

    /// <summary>Appends <paramref name="op"/> applied to <paramref name="inputs"/> and returns its output.</summary>
    public Value Apply(Op op, params Value[] inputs)
    {
        TensorDesc outDesc = Infer(op, inputs);
        var output = Add(ValueKind.Intermediate, outDesc, null);
        var node = new Node(_nodes.Count, op, inputs, output, _segment);
        output.Producer = node;
        _nodes.Add(node);
        return output;
    }

    /// <summary>Returns <paramref name="value"/> itself when contiguous, otherwise a contiguous copy.</summary>
    public Value Contiguous(Value value, bool force = false) =>
        !force && value.Shape.IsContiguous ? value : Apply(CopyOp.Instance, value);

    public Value Permute(Value value, params int[] order) => View(value, value.Shape.Permute(order), 0);

    public Value Slice(Value value, int axis, int start, int length)
    {
        var (shape, offset) = value.Shape.Slice(axis, start, length);
        return View(value, shape, offset);
    }

    /// <summary>Reinterprets a value with new dims (same element count); copies first if it is not contiguous.</summary>
    public Value Reshape(Value value, params int[] dims)
    {
        int infer = Array.IndexOf(dims, -1);
        if (infer >= 0)
        {
            long known = 1;
            for (int i = 0; i < dims.Length; i++) if (i != infer) known *= dims[i];
            dims = (int[])dims.Clone();
            dims[infer] = known == 0 ? 0 : (int)(value.Shape.ElementCount / known);
        }
        var shape = new TensorShape(dims);
        if (shape.ElementCount != value.Shape.ElementCount)
            throw new ArgumentException($"reshape of {value.Shape} to {shape}: element counts differ");
        return View(Contiguous(value), shape, 0);
    }

    /// <summary>
    /// Broadcasts <paramref name="value"/> to <paramref name="dims"/> without copying, like <c>torch.expand</c>: dims
    /// are aligned at the last one and every size-1 (or missing) dim is repeated with stride 0.
    /// </summary>
    public Value Expand(Value value, params int[] dims)
    {
        var shape = value.Shape;
        if (dims.Length < shape.Rank)
            throw new ArgumentException($"expand of {shape} to [{string.Join(", ", dims)}]: fewer dims than the value");
        var strides = new long[dims.Length];
        for (int i = 1; i <= dims.Length; i++)
        {
            int own = i <= shape.Rank ? shape[-i] : 1;
            if (own != dims[^i] && own != 1)
                throw new ArgumentException($"expand of {shape} to [{string.Join(", ", dims)}]: dim -{i} is {own}, not 1 or {dims[^i]}");
            strides[^i] = own == 1 ? 0 : shape.Strides[shape.Rank - i];
        }
        return View(value, new TensorShape(dims, strides), 0);
    }

    /// <summary>
    /// Appends <paramref name="op"/> and writes its result into the memory of <paramref name="state"/>, a constant (a
    /// trained parameter, a gradient or optimizer buffer) that lives across runs, instead of into the arena. Nodes run
    /// in order, so the write happens after every earlier node has read the old contents. Returns the written value.
    /// </summary>
    public Value Assign(Value state, Op op, params Value[] inputs)
    {
        if (state.Root.Kind != ValueKind.Constant || !state.Shape.IsContiguous)
            throw new ArgumentException($"assign: {state} must be a contiguous constant (or a contiguous view of one)");
        TensorDesc outDesc = Infer(op, inputs);
        if (outDesc.DType != state.DType || !outDesc.Shape.SameDims(state.Shape))
            throw new ArgumentException($"assign: {op.Name} produces {outDesc}, which does not fit {state}");
        var output = View(state, state.Shape, 0);
        var node = new Node(_nodes.Count, op, inputs, output, _segment);
        output.Producer = node;
        _nodes.Add(node);
        return output;
    }

    /// <summary>
    /// Starts a gradient-checkpointing segment (a model block): the nodes appended until the scope is disposed may be
    /// recomputed by autograd instead of kept alive for the backward pass (<see cref="Autograd.Gradients"/> with
    /// recomputation on). Without autograd the scope changes nothing. Nested scopes join the outer segment.
    /// </summary>
    public IDisposable Checkpoint()
    {
        if (_segment >= 0) return new SegmentScope(this, _segment);
        _segment = _segments++;
        return new SegmentScope(this, -1);
    }

    private sealed class SegmentScope(GraphBuilder graph, int restore) : IDisposable
    {
        public void Dispose() => graph._segment = restore;
    }

    /// <summary>A view of <paramref name="parent"/> shaped and offset like <paramref name="view"/> is on its own parent.</summary>
    internal Value ViewLike(Value view, Value parent) => View(parent, view.Shape, view.ViewElementOffset);

    /// <summary>Makes <paramref name="inputs"/> contiguous where the op needs it and infers its output.</summary>
    private TensorDesc Infer(Op op, Value[] inputs)
    {
        if (!op.AcceptsStridedInputs)
            for (int i = 0; i < inputs.Length; i++)
                inputs[i] = Contiguous(inputs[i]);
        var descs = new TensorDesc[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) descs[i] = inputs[i].Desc;
        return op.InferOutput(descs);
    }

    private Value View(Value value, TensorShape shape, long elementOffset)
    {
        var v = new Value(_values.Count, ValueKind.View, new TensorDesc(value.DType, shape), null)
        {
            ViewOf = value,
            ViewElementOffset = elementOffset,
        };
        _values.Add(v);
        return v;
    }

    private Value Add(ValueKind kind, TensorDesc desc, string? name)
    {
        var v = new Value(_values.Count, kind, desc, name);
        _values.Add(v);
        return v;
    }

    /// <summary>Plans memory and binds every node to <paramref name="backend"/>'s kernels.</summary>
    public ExecutionPlan Compile(IBackend backend) => new(this, backend, MemoryPlanner.Plan(this, backend));
}
