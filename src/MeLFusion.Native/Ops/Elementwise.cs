using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

public enum BinaryOperation
{
    Add,
    Subtract,
    Multiply,
    Divide,
}

/// <summary>
/// a (op) b with numpy/torch broadcasting: shapes are aligned at the last dim and each pair of dims must be equal or
/// contain a 1. Inputs may be strided views; broadcast inputs are read in place, never expanded. The output may
/// reuse a's memory when it has a's shape.
/// </summary>
public sealed class BinaryOp(BinaryOperation operation) : Op<BinaryOp>, IDifferentiable
{
    public BinaryOperation Operation { get; } = operation;

    public override string Name => Operation switch
    {
        BinaryOperation.Add => "add",
        BinaryOperation.Subtract => "sub",
        BinaryOperation.Multiply => "mul",
        BinaryOperation.Divide => "div",
        _ => throw new ArgumentOutOfRangeException(nameof(Operation), Operation, "unknown binary operation"),
    };

    public override int InPlaceInput => 0;
    public override bool AcceptsStridedInputs => true;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "a", "b");
        var a = inputs[0].Shape;
        var b = inputs[1].Shape;
        var dims = new int[Math.Max(a.Rank, b.Rank)];
        for (int i = 1; i <= dims.Length; i++)
        {
            int da = i <= a.Rank ? a[-i] : 1;
            int db = i <= b.Rank ? b[-i] : 1;
            if (da != db && da != 1 && db != 1)
                throw Invalid(Name, $"shapes {a} and {b} do not broadcast (dim -{i}: {da} vs {db})");
            dims[^i] = da == 1 ? db : da;
        }
        return new TensorDesc(DType.F32, new TensorShape(dims));
    }

    /// <summary>Each operand's gradient, summed back over the dims broadcasting expanded.</summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        Value a = context.Input(0), b = context.Input(1), dy = context.OutputGradient;
        void Give(int input, Func<Value> gradient)
        {
            if (context.NeedsGradient(input))
                context.AddGradient(input, g.SumTo(gradient(), context.Input(input).Shape.Dims));
        }
        switch (Operation)
        {
            case BinaryOperation.Add:
                Give(0, () => dy);
                Give(1, () => dy);
                break;
            case BinaryOperation.Subtract:
                Give(0, () => dy);
                Give(1, () => g.Scale(dy, -1f));
                break;
            case BinaryOperation.Multiply:
                Give(0, () => g.Mul(dy, b));
                Give(1, () => g.Mul(dy, a));
                break;
            case BinaryOperation.Divide: // d(a/b)/db = -(a/b)/b
                Give(0, () => g.Div(dy, b));
                Give(1, () => g.Scale(g.Div(g.Mul(dy, context.Output), b), -1f));
                break;
        }
    }
}

public enum ScalarOperation
{
    /// <summary>x * value.</summary>
    Multiply,
    /// <summary>x + value.</summary>
    Add,
    /// <summary>max(x, value); NaN stays NaN.</summary>
    Maximum,
    /// <summary>min(x, value); NaN stays NaN.</summary>
    Minimum,
}

/// <summary>x (op) a constant, elementwise; x may be a strided view. The output may reuse x's memory.</summary>
public sealed class ScalarOp(ScalarOperation operation, float value) : Op<ScalarOp>, IDifferentiable
{
    public ScalarOperation Operation { get; } = operation;
    public float Value { get; } = value;

    public override string Name => Operation switch
    {
        ScalarOperation.Multiply => "scale",
        ScalarOperation.Add => "add_scalar",
        ScalarOperation.Maximum => "clamp_min",
        ScalarOperation.Minimum => "clamp_max",
        _ => throw new ArgumentOutOfRangeException(nameof(Operation), Operation, "unknown scalar operation"),
    };

    public override int InPlaceInput => 0;
    public override bool AcceptsStridedInputs => true;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }

    public void Backward(GradientContext context)
    {
        var dy = context.OutputGradient;
        context.AddGradient(0, Operation switch
        {
            ScalarOperation.Multiply => context.Graph.Scale(dy, Value),
            ScalarOperation.Add => dy,
            ScalarOperation.Maximum => context.Graph.Apply(new ClampGradientOp(Value, float.PositiveInfinity), context.Input(0), dy),
            ScalarOperation.Minimum => context.Graph.Apply(new ClampGradientOp(float.NegativeInfinity, Value), context.Input(0), dy),
            _ => throw new ArgumentOutOfRangeException(nameof(Operation), Operation, "unknown scalar operation"),
        });
    }
}

/// <summary>
/// The gradient of a clamp to [<see cref="Min"/>, <see cref="Max"/>]: inputs (x, dy), output dy where
/// Min ≤ x ≤ Max and 0 elsewhere (torch's clamp backward, bounds inclusive). Both inputs have the same dims.
/// </summary>
public sealed class ClampGradientOp(float min, float max) : Op<ClampGradientOp>
{
    public float Min { get; } = min;
    public float Max { get; } = max;

    public override string Name => "clamp_backward";
    public override int InPlaceInput => 1;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x", "dy");
        if (!inputs[0].Shape.SameDims(inputs[1].Shape))
            throw Invalid(Name, $"x {inputs[0].Shape} and dy {inputs[1].Shape} must have the same dims");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }
}

public static class ElementwiseExtensions
{
    /// <summary>a + b with broadcasting.</summary>
    public static Value Add(this GraphBuilder g, Value a, Value b) => g.Apply(new BinaryOp(BinaryOperation.Add), a, b);

    /// <summary>a - b with broadcasting.</summary>
    public static Value Sub(this GraphBuilder g, Value a, Value b) => g.Apply(new BinaryOp(BinaryOperation.Subtract), a, b);

    /// <summary>a * b with broadcasting.</summary>
    public static Value Mul(this GraphBuilder g, Value a, Value b) => g.Apply(new BinaryOp(BinaryOperation.Multiply), a, b);

    /// <summary>a / b with broadcasting (IEEE division: x/0 is ±inf or NaN).</summary>
    public static Value Div(this GraphBuilder g, Value a, Value b) => g.Apply(new BinaryOp(BinaryOperation.Divide), a, b);

    /// <summary>x * <paramref name="factor"/>.</summary>
    public static Value Scale(this GraphBuilder g, Value x, float factor) => g.Apply(new ScalarOp(ScalarOperation.Multiply, factor), x);

    /// <summary>x + <paramref name="value"/>.</summary>
    public static Value AddScalar(this GraphBuilder g, Value x, float value) => g.Apply(new ScalarOp(ScalarOperation.Add, value), x);

    /// <summary>x limited to [<paramref name="min"/>, <paramref name="max"/>], as torch.clamp (NaN stays NaN).</summary>
    public static Value Clamp(this GraphBuilder g, Value x, float min, float max) =>
        g.Apply(new ScalarOp(ScalarOperation.Minimum, max), g.Apply(new ScalarOp(ScalarOperation.Maximum, min), x));
}
