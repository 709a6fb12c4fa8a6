using MeLFusion.Native.Ops;

namespace MeLFusion.Native.Runtime;

/// <summary>
/// An op that knows its gradient: given the gradient of its output it appends, to the same graph, the ops that compute
/// the gradient of each input that needs one. Backward ops are ordinary ops, so forward, backward and optimizer step
/// share one planned arena and run on every backend that has their kernels.
/// </summary>
public interface IDifferentiable
{
    void Backward(GradientContext context);
}

/// <summary>What an op's gradient rule sees: its node, the output's gradient, and where to send input gradients.</summary>
public sealed class GradientContext
{
    private readonly IReadOnlyList<Value> _targets;
    private readonly Func<Value, bool> _needsGradient;
    private readonly Action<Value, Value, string> _accumulate;

    internal GradientContext(GraphBuilder graph, Node node, IReadOnlyList<Value> targets, Value outputGradient,
        Func<Value, bool> needsGradient, Action<Value, Value, string> accumulate)
    {
        Graph = graph;
        Node = node;
        _targets = targets;
        OutputGradient = outputGradient;
        Given = new bool[node.Inputs.Count];
        _needsGradient = needsGradient;
        _accumulate = accumulate;
    }

    public GraphBuilder Graph { get; }

    /// <summary>The node to differentiate: the original, or its recomputed copy inside a checkpointed segment.</summary>
    public Node Node { get; }
    public Value Output => Node.Output;
    public Value Input(int index) => Node.Inputs[index];
    public int InputCount => Node.Inputs.Count;

    /// <summary>dLoss/dOutput, with the output's dims.</summary>
    public Value OutputGradient { get; }

    /// <summary>Whether input <paramref name="index"/> lies on a path from a value whose gradient was asked for.</summary>
    public bool NeedsGradient(int index) => _needsGradient(_targets[index]);

    /// <summary>Adds <paramref name="gradient"/> (the input's dims) to input <paramref name="index"/>'s gradient.</summary>
    public void AddGradient(int index, Value gradient)
    {
        _accumulate(_targets[index], gradient, Node.Op.Name);
        Given[index] = true;
    }

    internal bool[] Given { get; }
}

/// <summary>
/// Reverse-mode differentiation over a built graph: appends the backward pass of a scalar (or any) loss to the same
/// <see cref="GraphBuilder"/> and returns the gradient values of the requested inputs and constants. Values are visited
/// newest first, which is a reverse topological order (a node's output and a view are always newer than what they
/// read), so every value's gradient is complete before it is propagated further.
/// <para>
/// With recomputation, the nodes of a checkpointed segment (<see cref="GraphBuilder.Checkpoint"/>) are appended again
/// when the backward pass reaches the segment, and its gradient rules read the copies: the originals die after the
/// forward pass (only the segment's inputs stay alive), trading one more forward of the segment for its memory.
/// </para>
/// </summary>
public static class Autograd
{
    /// <summary>
    /// Appends the gradient of <paramref name="loss"/> with respect to each of <paramref name="wrt"/>, seeded with
    /// <paramref name="seed"/> (dLoss/dLoss, the loss's dims: ones, or the loss scale of mixed precision). Values of
    /// <paramref name="wrt"/> the loss does not depend on are missing from the result. <paramref name="recompute"/>
    /// turns gradient checkpointing on for the graph's checkpointed segments.
    /// </summary>
    public static Dictionary<Value, Value> Gradients(GraphBuilder g, Value loss, Value seed, IEnumerable<Value> wrt, bool recompute = false)
    {
        if (!seed.Shape.SameDims(loss.Shape))
            throw new ArgumentException($"autograd: seed {seed} must have the dims of the loss {loss}");
        var values = g.Values.ToArray();
        var targets = wrt.ToArray();
        var requires = new bool[values.Length];
        foreach (var v in targets) requires[v.Id] = v.DType.IsFloat();
        foreach (var v in values)
        {
            if (!v.DType.IsFloat()) continue;
            if (v.Kind == ValueKind.View) requires[v.Id] |= requires[v.ViewOf!.Id];
            else if (v.Producer is { } p) requires[v.Id] |= p.Inputs.Any(i => requires[i.Id]);
        }
        if (!requires[loss.Id]) return [];

        var gradients = new Value?[values.Length];
        void Accumulate(Value target, Value gradient, string from)
        {
            if (target.Id >= values.Length || !requires[target.Id]) return;
            if (!gradient.Shape.SameDims(target.Shape))
                throw new InvalidOperationException($"autograd: {from} gave a gradient {gradient.Shape} for {target}");
            var existing = gradients[target.Id];
            gradients[target.Id] = existing is null ? gradient : g.Add(existing, gradient);
        }
        gradients[loss.Id] = seed;
        var copies = recompute ? new SegmentCopies(g) : null;

        for (int id = values.Length - 1; id >= 0; id--)
        {
            var v = values[id];
            if (gradients[id] is not { } gradient || v.Kind is ValueKind.Input or ValueKind.Constant) continue;
            if (v.Kind == ValueKind.View)
            {
                var (target, scattered) = ViewGradient(g, v, gradient);
                Accumulate(target, scattered, "view");
                continue;
            }
            var node = v.Producer!;
            if (node.Op is not IDifferentiable rule)
                throw new NotSupportedException(
                    $"autograd: op '{node.Op.Name}' has no gradient, and {node} lies between a trained value and the loss");
            var readable = copies is not null && node.Segment >= 0 ? copies.Of(node) : node;
            var context = new GradientContext(g, readable, node.Inputs, gradient, i => i.Id < values.Length && requires[i.Id], Accumulate);
            rule.Backward(context);
            for (int i = 0; i < node.Inputs.Count; i++)
                if (context.NeedsGradient(i) && !context.Given[i])
                    throw new InvalidOperationException($"autograd: '{node.Op.Name}' gave no gradient for input {i} of {node}");
        }

        var result = new Dictionary<Value, Value>();
        foreach (var v in targets)
            if (gradients[v.Id] is { } grad) result[v] = grad;
        return result;
    }

    /// <summary>
    /// The gradient of a view goes to the nearest contiguous value it views (skipping views of views, whose memory
    /// mapping composes): a reshape is a reshape back, a full permute a permuted copy, a slice a scatter into zeros.
    /// </summary>
    private static (Value Target, Value Gradient) ViewGradient(GraphBuilder g, Value view, Value gradient)
    {
        var target = view.ViewOf!;
        while (!target.Shape.IsContiguous) target = target.ViewOf!;
        long offset = view.RootElementOffset - target.RootElementOffset;
        var shape = view.Shape;
        for (int i = 0; i < shape.Rank; i++)
            if (shape.Strides[i] == 0 && shape[i] > 1)
                throw new NotSupportedException($"autograd: the gradient of broadcast view {view} is not supported");
        if (offset == 0 && shape.ElementCount == target.Shape.ElementCount)
        {
            // A bijection onto the target: order the view's dims by memory stride to undo the permutation.
            var order = Enumerable.Range(0, shape.Rank).OrderByDescending(i => shape.Strides[i]).ThenBy(i => i).ToArray();
            var memoryOrder = shape.Permute(order);
            if (memoryOrder.IsContiguous)
            {
                var inMemoryOrder = order.SequenceEqual(Enumerable.Range(0, shape.Rank)) ? gradient : g.Contiguous(g.Permute(gradient, order));
                return (target, g.Reshape(inMemoryOrder, target.Shape.Dims.ToArray()));
            }
        }
        return (target, g.Apply(new ViewScatterOp(target.Shape.Dims.ToArray(), shape, offset), gradient));
    }

    /// <summary>The recomputed copies of checkpointed segments, appended on first use.</summary>
    private sealed class SegmentCopies(GraphBuilder g)
    {
        /// <summary>The forward nodes of each segment, in order, taken before the backward pass adds any.</summary>
        private readonly ILookup<int, Node> _segments = g.Nodes.Where(n => n.Segment >= 0).ToLookup(n => n.Segment);
        private readonly Dictionary<int, Value> _values = [];
        private readonly Dictionary<int, Node> _nodes = [];
        private readonly HashSet<int> _emitted = [];

        /// <summary>The copy of <paramref name="node"/>, appending its whole segment the first time.</summary>
        public Node Of(Node node)
        {
            if (_emitted.Add(node.Segment))
                foreach (var original in _segments[node.Segment])
                {
                    var copy = g.Apply(original.Op, original.Inputs.Select(Map).ToArray());
                    _values[original.Output.Id] = copy;
                    _nodes[original.Index] = copy.Producer!;
                }
            return _nodes[node.Index];
        }

        /// <summary>A segment-internal value's copy (views of copies re-created alike); anything else itself.</summary>
        private Value Map(Value v)
        {
            if (_values.TryGetValue(v.Id, out var copy)) return copy;
            if (v.Kind != ValueKind.View) return v;
            var parent = Map(v.ViewOf!);
            return parent == v.ViewOf ? v : _values[v.Id] = g.ViewLike(v, parent);
        }
    }
}
