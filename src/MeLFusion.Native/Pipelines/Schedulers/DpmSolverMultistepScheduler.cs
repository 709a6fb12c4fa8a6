namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>What the last DPM-Solver step lands on (diffusers' final_sigmas_type).</summary>
public enum DpmFinalSigma
{
    /// <summary>σ = 0: the last step returns the predicted clean sample (diffusers' default).</summary>
    Zero,

    /// <summary>The noise level of t = 0, as diffusers releases before final_sigmas_type did.</summary>
    SigmaMin,
}

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022), diffusers' DPMSolverMultistepScheduler with algorithm_type dpmsolver++,
/// solver_order 2, solver_type midpoint, no thresholding. With α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), λ = ln(α/σ),
/// h = λ_t − λ_s and D₀ the current x̂₀ prediction (x̂₀ of the previous step: D₋₁), the step from s to the next t is
/// first order x_t = (σ_t/σ_s) x_s + α_t (1 − e^−h) D₀ on the first step and where lower-order-final applies, else
/// x_t = (σ_t/σ_s) x_s + α_t (1 − e^−h) (D₀ + (D₀ − D₋₁)/(2 r)), r = (λ_s − λ_s₋₁)/h.
/// </summary>
/// <remarks>
/// Lower-order-final: the last step is first order when final sigma is zero, or when lowerOrderFinal and N &lt; 15.
/// The step counter starts at the first timestep passed (the first match in <see cref="SchedulerBase.Timesteps"/>,
/// so a run may start mid-schedule) and then advances by one per step; each step must pass the next timestep.
/// </remarks>
public sealed class DpmSolverMultistepScheduler(NoiseSchedule schedule, PredictionType prediction,
    TimestepSpacing spacing = TimestepSpacing.Linspace, int stepsOffset = 0, bool lowerOrderFinal = true,
    DpmFinalSigma finalSigma = DpmFinalSigma.Zero)
    : SchedulerBase(schedule, prediction, spacing, stepsOffset)
{
    private double[] _alphas = [];
    private double[] _sigmas = [];
    private float[] _original = [];
    private float[] _previousOriginal = [];
    private int _stepIndex = -1;
    private bool _hasPreviousOriginal;

    public bool LowerOrderFinal { get; } = lowerOrderFinal;
    public DpmFinalSigma FinalSigma { get; } = Enum.IsDefined(finalSigma) ? finalSigma
        : throw new ArgumentOutOfRangeException(nameof(finalSigma), finalSigma, "unknown final sigma type");

    protected override int[] MakeTimesteps(int inferenceSteps) =>
        TimestepGrid.DpmSolver(Spacing, Schedule.TrainTimesteps, inferenceSteps, StepsOffset);

    protected override void OnTimestepsSet()
    {
        var timesteps = Timesteps;
        _alphas = new double[timesteps.Length + 1];
        _sigmas = new double[timesteps.Length + 1];
        for (int i = 0; i <= timesteps.Length; i++)
        {
            bool final = i == timesteps.Length;
            double alphaCumprod = !final ? Schedule.AlphaCumprod(timesteps[i])
                : FinalSigma == DpmFinalSigma.Zero ? 1.0 : Schedule.AlphaCumprod(0);
            _alphas[i] = Math.Sqrt(alphaCumprod);
            _sigmas[i] = Math.Sqrt(1 - alphaCumprod);
        }
        _stepIndex = -1;
        _hasPreviousOriginal = false;
    }

    public override void Step(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> output, StepNoise noise = default)
    {
        CheckStep(modelOutput, timestep, sample, output);
        int index = NextStepIndex(timestep);
        int steps = Timesteps.Length;
        if (_original.Length != sample.Length)
        {
            if (_hasPreviousOriginal)
                throw new ArgumentException($"DpmSolverMultistepScheduler: the sample changed from {_original.Length} to {sample.Length} elements mid-run");
            _original = new float[sample.Length];
            _previousOriginal = new float[sample.Length];
        }
        (_original, _previousOriginal) = (_previousOriginal, _original);
        var predicted = PredictionCoefficients.At(Prediction, Schedule.AlphaCumprod(timestep));
        Affine(sample, predicted.X0FromSample, modelOutput, predicted.X0FromOutput, _original);

        double alphaS = _alphas[index], sigmaS = _sigmas[index], alphaT = _alphas[index + 1], sigmaT = _sigmas[index + 1];
        double sampleWeight = sigmaT / sigmaS;
        double originalWeight = alphaT * (1 - sigmaT * alphaS / (alphaT * sigmaS)); // α_t (1 − e^−h), finite at σ_t = 0
        bool lowerOrderFinal = index == steps - 1 && (FinalSigma == DpmFinalSigma.Zero || (LowerOrderFinal && steps < 15));

        if (!_hasPreviousOriginal || lowerOrderFinal)
        {
            Affine(sample, sampleWeight, _original, originalWeight, output);
        }
        else
        {
            double h = Lambda(index + 1) - Lambda(index), previousH = Lambda(index) - Lambda(index - 1);
            double differenceWeight = originalWeight * 0.5 * h / previousH;
            for (int i = 0; i < output.Length; i++)
                output[i] = (float)(sampleWeight * sample[i] + originalWeight * _original[i]
                    + differenceWeight * ((double)_original[i] - _previousOriginal[i]));
        }
        _hasPreviousOriginal = true;
        _stepIndex = index + 1;
    }

    private double Lambda(int index) => Math.Log(_alphas[index]) - Math.Log(_sigmas[index]);

    private int NextStepIndex(int timestep)
    {
        var timesteps = Timesteps;
        if (_stepIndex < 0)
        {
            int first = timesteps.IndexOf(timestep);
            return first >= 0 ? first
                : throw new ArgumentException($"DpmSolverMultistepScheduler: timestep {timestep} is not in the schedule; pass Timesteps in order");
        }
        if (_stepIndex >= timesteps.Length)
            throw new InvalidOperationException($"DpmSolverMultistepScheduler: all {timesteps.Length} steps are done; call SetTimesteps for a new run");
        if (timesteps[_stepIndex] != timestep)
            throw new ArgumentException($"DpmSolverMultistepScheduler: step {_stepIndex} expects timestep {timesteps[_stepIndex]}, got {timestep}");
        return _stepIndex;
    }
}
