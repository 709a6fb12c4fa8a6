using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Ops;

/// <summary>
/// One torch.optim.AdamW step over every trained parameter at once, with torch.nn.utils.clip_grad_norm_ folded in.
/// Inputs: state [3, P] (row 0 the weights, row 1 the first moment m, row 2 the second moment v), grad [P], schedule
/// [3] = (learning rate, 1 - beta1^t, 1 - beta2^t) for step t counted from 1 (Training.AdamWSchedule writes it), and
/// gradSquareSum [1] = Σ grad² (<see cref="SumOfSquaresOp"/>). Output: the new state [3, P], meant to be assigned back
/// into the state constant (<see cref="OptimizerExtensions.AssignAdamWStep"/>). Per element, with the gradient first
/// scaled by clip = min(1, maxGradNorm / (√gradSquareSum + 1e-6)) (1 when maxGradNorm is +∞):
/// w ← w·(1 - lr·weightDecay); m ← β1·m + (1-β1)·g; v ← β2·v + (1-β2)·g²; w ← w - (lr / (1-β1^t))·m / (√v / √(1-β2^t) + ε).
/// The learning rate and bias corrections are inputs so that one planned graph serves every step.
/// </summary>
public sealed class AdamWStepOp : Op<AdamWStepOp>
{
    /// <summary>Elements of the schedule input: learning rate, 1 - beta1^t, 1 - beta2^t.</summary>
    public const int ScheduleLength = 3;

    /// <summary>What clip_grad_norm_ adds to the norm before dividing by it.</summary>
    public const float ClipEpsilon = 1e-6f;

    public AdamWStepOp(double beta1, double beta2, double epsilon, double weightDecay, double maxGradNorm = double.PositiveInfinity)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw Invalid("adamw_step", $"beta1 {beta1} must lie in [0, 1)");
        if (!(beta2 >= 0 && beta2 < 1)) throw Invalid("adamw_step", $"beta2 {beta2} must lie in [0, 1)");
        if (!(epsilon >= 0) || double.IsInfinity(epsilon)) throw Invalid("adamw_step", $"epsilon {epsilon} must be finite and >= 0");
        if (!(weightDecay >= 0) || double.IsInfinity(weightDecay)) throw Invalid("adamw_step", $"weight decay {weightDecay} must be finite and >= 0");
        if (!(maxGradNorm > 0)) throw Invalid("adamw_step", $"max gradient norm {maxGradNorm} must be > 0 (+infinity disables clipping)");
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        MaxGradNorm = maxGradNorm;
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }
    public double WeightDecay { get; }
    /// <summary>The global gradient norm is clipped to this; +∞ leaves gradients as they are.</summary>
    public double MaxGradNorm { get; }
    public bool ClipsGradients => !double.IsPositiveInfinity(MaxGradNorm);

    /// <summary>The f32 coefficients the kernels use; 1 - β is formed in double as torch forms it in Python.</summary>
    public Coefficients KernelCoefficients => new((float)Beta1, (float)(1 - Beta1), (float)Beta2, (float)(1 - Beta2), (float)Epsilon,
        (float)WeightDecay, (float)MaxGradNorm, ClipsGradients);

    public override string Name => "adamw_step";

    /// <summary>Each element of the state is read before it is written, so the new state may overwrite the old.</summary>
    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "state", "grad", "schedule", "gradSquareSum");
        var state = inputs[0].Shape;
        if (state.Rank != 2 || state[0] != 3)
            throw Invalid(Name, $"state {state} must be [3, P] (weights, first moment, second moment)");
        if (inputs[1].Shape.Rank != 1 || inputs[1].Shape[0] != state[1])
            throw Invalid(Name, $"grad {inputs[1].Shape} must be [{state[1]}] for state {state}");
        if (inputs[2].Shape.Rank != 1 || inputs[2].Shape[0] != ScheduleLength)
            throw Invalid(Name, $"schedule {inputs[2].Shape} must be [{ScheduleLength}] (learning rate, 1 - beta1^t, 1 - beta2^t)");
        if (inputs[3].Shape.Rank != 1 || inputs[3].Shape[0] != 1)
            throw Invalid(Name, $"gradSquareSum {inputs[3].Shape} must be [1]");
        return new TensorDesc(DType.F32, new TensorShape(state[0], state[1]));
    }

    /// <summary>The op's parameters as the kernels use them (f32).</summary>
    public readonly record struct Coefficients(float Beta1, float OneMinusBeta1, float Beta2, float OneMinusBeta2,
        float Epsilon, float WeightDecay, float MaxGradNorm, bool Clips)
    {
        /// <summary>
        /// The per-step scalars every element shares, from the schedule and Σ grad². kernels/optimizer.cu forms them
        /// with the same f32 operations. A non-finite Σ grad² gives a NaN or zero factor, as clip_grad_norm_ does.
        /// </summary>
        public StepScalars Step(float learningRate, float biasCorrection1, float biasCorrection2, float gradSquareSum)
        {
            float clip = 1f;
            if (Clips)
            {
                float ratio = MaxGradNorm / (MathF.Sqrt(gradSquareSum) + ClipEpsilon);
                clip = ratio >= 1f ? 1f : ratio; // NaN stays NaN, as torch.clamp(max=1)
            }
            return new StepScalars(clip, 1f - learningRate * WeightDecay, learningRate / biasCorrection1, MathF.Sqrt(biasCorrection2));
        }
    }

    /// <summary>Gradient scale, weight factor 1 - lr·wd, step size lr / (1-β1^t) and √(1-β2^t).</summary>
    public readonly record struct StepScalars(float Clip, float WeightFactor, float StepSize, float BiasCorrection2Sqrt);
}

/// <summary>
/// An exponential moving average of weights: decay·ema + (1 - decay)·weights, elementwise over equal dims; assigned
/// back into the EMA constant (<see cref="OptimizerExtensions.AssignEmaUpdate"/>).
/// </summary>
public sealed class EmaUpdateOp : Op<EmaUpdateOp>
{
    public EmaUpdateOp(double decay)
    {
        if (!(decay >= 0 && decay <= 1)) throw Invalid("ema_update", $"decay {decay} must lie in [0, 1]");
        Decay = decay;
    }

    public double Decay { get; }

    /// <summary>1 - decay formed in double, as torch forms the alpha of add_ in Python.</summary>
    public float OneMinusDecay => (float)(1 - Decay);

    public override string Name => "ema_update";

    public override int InPlaceInput => 0;

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "ema", "weights");
        if (!inputs[0].Shape.SameDims(inputs[1].Shape))
            throw Invalid(Name, $"ema {inputs[0].Shape} and weights {inputs[1].Shape} must have the same dims");
        return new TensorDesc(DType.F32, new TensorShape(inputs[0].Shape.Dims.ToArray()));
    }
}

/// <summary>A tensor of <see cref="Dims"/> holding <see cref="Value"/> everywhere; no inputs (zeroes gradient buffers).</summary>
public sealed class FillOp : Op<FillOp>
{
    public FillOp(float value, params int[] dims)
    {
        Value = value;
        Dims = (int[])dims.Clone();
        if (Dims.Any(d => d < 0)) throw Invalid("fill", $"dims [{string.Join(", ", Dims)}] must not be negative");
    }

    public float Value { get; }
    public int[] Dims { get; }

    public override string Name => "fill";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        if (inputs.Length != 0) throw Invalid(Name, $"takes no inputs, got {inputs.Length}");
        return new TensorDesc(DType.F32, new TensorShape(Dims));
    }
}

/// <summary>
/// Σ x² over every element of x, as [1]: the squared global gradient norm for clipping. Accumulated in double in a
/// fixed order on every backend (per-chunk partials added in order on the CPU, per-block partials then one block on
/// CUDA), so the result does not depend on the number of cores.
/// </summary>
public sealed class SumOfSquaresOp : Op<SumOfSquaresOp>, IDifferentiable
{
    public static SumOfSquaresOp Instance { get; } = new();

    public override string Name => "sum_of_squares";

    public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs)
    {
        FloatInputs.Require(Name, inputs, "x");
        return new TensorDesc(DType.F32, new TensorShape(1));
    }

    /// <summary>d(Σ x²)/dx = 2x·dy.</summary>
    public void Backward(GradientContext context)
    {
        var g = context.Graph;
        context.AddGradient(0, g.Scale(g.Mul(context.Input(0), context.OutputGradient), 2f));
    }
}

public static class OptimizerExtensions
{
    /// <summary>Appends an AdamW step that overwrites <paramref name="state"/> (a [3, P] constant); see <see cref="AdamWStepOp"/>.</summary>
    public static Value AssignAdamWStep(this GraphBuilder g, AdamWStepOp step, Value state, Value grad, Value schedule, Value gradSquareSum) =>
        g.Assign(state, step, state, grad, schedule, gradSquareSum);

    /// <summary>Appends ema ← decay·ema + (1 - decay)·weights into the constant <paramref name="ema"/>.</summary>
    public static Value AssignEmaUpdate(this GraphBuilder g, Value ema, Value weights, double decay) =>
        g.Assign(ema, new EmaUpdateOp(decay), ema, weights);

    /// <summary>Appends a fill of the constant <paramref name="state"/> with <paramref name="value"/> (0 clears a gradient buffer).</summary>
    public static Value AssignFill(this GraphBuilder g, Value state, float value) =>
        g.Assign(state, new FillOp(value, state.Shape.Dims.ToArray()));

    /// <summary>A new tensor of <paramref name="dims"/> holding <paramref name="value"/>.</summary>
    public static Value Fill(this GraphBuilder g, float value, params int[] dims) => g.Apply(new FillOp(value, dims));

    /// <summary>Σ x², as [1]; see <see cref="SumOfSquaresOp"/>.</summary>
    public static Value SumOfSquares(this GraphBuilder g, Value x) => g.Apply(SumOfSquaresOp.Instance, x);
}
