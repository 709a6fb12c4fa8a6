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
    private readonly Func<Value, bool> _needsGradient;
    private readonly Action<Value, Value, string> _accumulate;

    internal GradientContext(GraphBuilder graph, Node node, Value outputGradient, Func<Value, bool> needsGradient,
        Action<Value, Value, string> accumulate)
    {
        Graph = graph;
        Node = node;
        OutputGradient = outputGradient;
        Given = new bool[node.Inputs.Count];
        _needsGradient = needsGradient;
        _accumulate = accumulate;
    }

    public GraphBuilder Graph { get; }
    public Node Node { get; }
    public Value Output => Node.Output;
    public Value Input(int index) => Node.Inputs[index];
    public int InputCount => Node.Inputs.Count;

    /// <summary>dLoss/dOutput, with the output's dims.</summary>
    public Value OutputGradient { get; }

    /// <summary>Whether input <paramref name="index"/> lies on a path from a value whose gradient was asked for.</summary>
    public bool NeedsGradient(int index) => _needsGradient(Node.Inputs[index]);

    /// <summary>Adds <paramref name="gradient"/> (the input's dims) to input <paramref name="index"/>'s gradient.</summary>
    public void AddGradient(int index, Value gradient)
    {
        _accumulate(Node.Inputs[index], gradient, Node.Op.Name);
        Given[index] = true;
    }

    internal bool[] Given { get; } = [];
}

/// <summary>
/// Reverse-mode differentiation over a built graph: appends the backward pass of a scalar (or any) loss to the same
/// <see cref="GraphBuilder"/> and returns the gradient values of the requested inputs and constants. Values are visited
/// newest first, which is a reverse topological order (a node's output and a view are always newer than what they
/// read), so every value's gradient is complete before it is propagated further.
/// </summary>
public static class Autograd
{
    /// <summary>
    /// Appends the gradient of <paramref name="loss"/> with respect to each of <paramref name="wrt"/>, seeded with
    /// <paramref name="seed"/> (dLoss/dLoss, the loss's dims: ones, or the loss scale of mixed precision). Values of
    /// <paramref name="wrt"/> the loss does not depend on are missing from the result.
    /// </summary>
    public static Dictionary<Value, Value> Gradients(GraphBuilder g, Value loss, Value seed, IEnumerable<Value> wrt)
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
            var context = new GradientContext(g, node, gradient, i => i.Id < values.Length && requires[i.Id], Accumulate);
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
}
