using System.Globalization;
using System.Runtime.InteropServices;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Emulation;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Tests.Training;
using MeLFusion.Native.Training;

namespace MeLFusion.Native.Tests.Ops;

public class OptimizerTests
{
    /// <summary>
    /// Five steps of torch.optim.AdamW with clip_grad_norm_ and a transformers schedule (tools/reference/optimizer.py)
    /// against our training step: Σ grad² of the gradient buffer, the AdamW step assigned into the [3, P] state, the
    /// gradient buffer cleared by a fill. Parameters, moments and gradients live in backend constants across runs, as
    /// in training; only the schedule is fed per step. Cases: clipped and unclipped steps with weight decay, clipping
    /// disabled (max norm +∞), a constant schedule. Tolerances cover f32 rounding differences (torch fuses some
    /// multiply-adds) accumulated over five steps.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdamWStepOp), MemberType = typeof(TestBackends))]
    public void AdamWStepsMatchTorchWithGradientClipping(string backend)
    {
        using var f = Fixture.Open("adamw");
        Assert.Equal(["clipped", "unclipped", "constant"], f.Cases);
        using var device = TestBackends.Create(backend);
        foreach (string c in f.Cases)
        {
            var op = new AdamWStepOp(MetaDouble(f, $"{c}.beta1"), MetaDouble(f, $"{c}.beta2"), MetaDouble(f, $"{c}.eps"),
                MetaDouble(f, $"{c}.weight_decay"), MetaDouble(f, $"{c}.max_grad_norm"));
            var schedule = new AdamWSchedule(ScheduleFixtures.Read(f, c), op);
            float[] initial = f.F32($"{c}.initial"), grads = f.F32($"{c}.grads"), rates = f.F32($"{c}.lr");
            float[] weights = f.F32($"{c}.weights"), first = f.F32($"{c}.m"), second = f.F32($"{c}.v");
            int count = initial.Length;

            using var stateBuffer = device.Allocate(3L * count * sizeof(float), "adamw state");
            using var gradBuffer = device.Allocate(count * sizeof(float), "gradients");
            var state = stateBuffer.View(DType.F32, new TensorShape(3, count));
            var grad = gradBuffer.View(DType.F32, new TensorShape(count));
            Upload(device, state, [.. initial, .. new float[2 * count]]);

            var g = new GraphBuilder();
            var stateValue = g.Constant("state", state);
            var gradValue = g.Constant("grad", grad);
            g.AssignAdamWStep(op, stateValue, gradValue, g.Input("schedule", DType.F32, AdamWStepOp.ScheduleLength), g.SumOfSquares(gradValue));
            g.AssignFill(gradValue, 0f);
            using var plan = g.Compile(device);

            for (int step = 0; step < rates.Length; step++)
            {
                string what = $"{backend} {c} step {step}";
                var values = schedule.Values(step);
                Check.Close([rates[step]], [values[0]], 0f, 1e-6f, $"{what}: learning rate");
                Upload(device, grad, grads.AsSpan(step * count, count));
                plan.SetInput<float>("schedule", values);
                plan.Run();
                var result = Download(device, state);
                Check.Close(weights.AsSpan(step * count, count), result.AsSpan(0, count), 1e-7f, 2e-6f, $"{what}: weights");
                Check.Close(first.AsSpan(step * count, count), result.AsSpan(count, count), 1e-8f, 2e-6f, $"{what}: first moment");
                Check.Close(second.AsSpan(step * count, count), result.AsSpan(2 * count, count), 1e-12f, 2e-6f, $"{what}: second moment");
                Assert.All(Download(device, grad), x => Assert.Equal(0f, x));
            }
        }
    }

    /// <summary>
    /// A buffer of several CPU work chunks and CUDA blocks, with moments already non-zero, stepped in place against
    /// the AdamW formulas in double. The absolute tolerance (a few f32 ulps of unit-sized operands) covers weights the
    /// step nearly cancels.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdamWStepOp), MemberType = typeof(TestBackends))]
    public void AdamWStepOfALargeBufferInPlaceMatchesTheFormulas(string backend)
    {
        const int count = 40_001;
        const double beta1 = 0.9, beta2 = 0.98, epsilon = 1e-7, weightDecay = 0.05, maxNorm = 100, learningRate = 3e-3;
        var random = new Random(12);
        float Uniform(double scale) => (float)((random.NextDouble() * 2 - 1) * scale);
        var state = Enumerable.Range(0, 3 * count).Select(i => i < 2 * count ? Uniform(1) : MathF.Pow(Uniform(0.1), 2)).ToArray(); // v >= 0
        var grad = Enumerable.Range(0, count).Select(_ => Uniform(1)).ToArray();
        double squareSum = grad.Sum(x => (double)x * x), clip = Math.Min(1, maxNorm / (Math.Sqrt(squareSum) + 1e-6));
        Assert.True(clip < 0.95, "the gradient should be clipped");
        float[] schedule = [(float)learningRate, (float)(1 - Math.Pow(beta1, 7)), (float)(1 - Math.Pow(beta2, 7))];

        using var device = TestBackends.Create(backend);
        using var stateBuffer = device.Allocate(3L * count * sizeof(float), "adamw state");
        var stateTensor = stateBuffer.View(DType.F32, new TensorShape(3, count));
        Upload(device, stateTensor, state);
        var g = new GraphBuilder();
        var gradValue = g.Input("grad", DType.F32, count);
        g.AssignAdamWStep(new AdamWStepOp(beta1, beta2, epsilon, weightDecay, maxNorm), g.Constant("state", stateTensor), gradValue,
            g.Input("schedule", DType.F32, 3), g.SumOfSquares(gradValue));
        using var plan = g.Compile(device);
        plan.SetInput<float>("grad", grad);
        plan.SetInput<float>("schedule", schedule);
        plan.Run();
        var actual = Download(device, stateTensor);

        var expected = new float[3 * count];
        for (int i = 0; i < count; i++)
        {
            double gi = grad[i] * clip;
            double m = beta1 * state[count + i] + (1 - beta1) * gi, v = beta2 * state[2 * count + i] + (1 - beta2) * gi * gi;
            double denominator = Math.Sqrt(v) / Math.Sqrt(schedule[2]) + epsilon;
            expected[i] = (float)(state[i] * (1 - learningRate * weightDecay) - learningRate / schedule[1] * m / denominator);
            expected[count + i] = (float)m;
            expected[2 * count + i] = (float)v;
        }
        Check.Close(expected, actual, 5e-7f, 2e-6f, $"{backend}: adamw step of {count} parameters");
    }

    /// <summary>
    /// Clipping scales every gradient by max_norm / (‖g‖ + 1e-6) when the norm exceeds max_norm: with zero moments, one
    /// step's first moment is (1 - β1)·clip·g. The norm comes from the gradSquareSum input, not from grad.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdamWStepOp), MemberType = typeof(TestBackends))]
    public void ClippingScalesGradientsByTheGlobalNorm(string backend)
    {
        float[] grad = [3f, -4f, 0.5f];
        float[] state = [1f, 2f, 3f, 0f, 0f, 0f, 0f, 0f, 0f];
        float[] schedule = [0.1f, 0.1f, 0.001f];
        foreach (var (maxNorm, squareSum, clip) in new[] { (2.0, 100f, 2f / (10f + 1e-6f)), (20.0, 100f, 1f), (double.PositiveInfinity, 1e6f, 1f) })
        {
            var result = OpRunner.Run(backend,
                (g, i) => g.Apply(new AdamWStepOp(0.9, 0.999, 1e-8, 0.0, maxNorm), i),
                new("state", [3, 3], state), new("grad", [3], grad), new("schedule", [3], schedule), new("gradSquareSum", [1], [squareSum]));
            Check.Close(grad.Select(x => 0.1f * clip * x).ToArray(), result.AsSpan(3, 3), 0f, 1e-6f, $"{backend}: m with max norm {maxNorm}");
        }
    }

    /// <summary>Expected: torch's ema.mul_(decay).add_(w, alpha=1 - decay), three updates.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(EmaUpdateOp), MemberType = typeof(TestBackends))]
    public void EmaUpdateMatchesTorch(string backend)
    {
        using var f = Fixture.Open("ema_update");
        using var device = TestBackends.Create(backend);
        foreach (string c in f.Cases)
        {
            float[] initial = f.F32($"{c}.initial"), weights = f.F32($"{c}.weights"), expected = f.F32($"{c}.out");
            int count = initial.Length;
            using var buffer = device.Allocate(count * sizeof(float), "ema");
            var ema = buffer.View(DType.F32, new TensorShape(count));
            Upload(device, ema, initial);
            var g = new GraphBuilder();
            g.AssignEmaUpdate(g.Constant("ema", ema), g.Input("weights", DType.F32, count), MetaDouble(f, $"{c}.decay"));
            using var plan = g.Compile(device);
            for (int step = 0; step < expected.Length / count; step++)
            {
                plan.SetInput<float>("weights", weights.AsSpan(step * count, count));
                plan.Run();
                Check.Close(expected.AsSpan(step * count, count), Download(device, ema), 1e-6f, 1e-6f, $"{backend} ema {c} update {step}");
            }
        }
    }

    /// <summary>A new tensor and an assigned constant, large enough for several CPU chunks and CUDA blocks.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(FillOp), MemberType = typeof(TestBackends))]
    public void FillWritesTheValueEverywhere(string backend)
    {
        using var device = TestBackends.Create(backend);
        Assert.All(OpRunner.Run(device, (g, _) => g.Fill(-2.5f, 3, 5, 7)), x => Assert.Equal(-2.5f, x));

        const int count = 40_003;
        using var buffer = device.Allocate(count * sizeof(float), "gradients");
        var gradients = buffer.View(DType.F32, new TensorShape(count));
        Upload(device, gradients, Enumerable.Range(0, count).Select(i => (float)i).ToArray());
        var g = new GraphBuilder();
        g.AssignFill(g.Constant("gradients", gradients), 0f);
        using var plan = g.Compile(device);
        plan.Run();
        Assert.All(Download(device, gradients), x => Assert.Equal(0f, x));
    }

    /// <summary>Expected: torch's Σ x² in float64, rounded to f32; ours accumulates in double, so they agree to an ulp.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SumOfSquaresOp), MemberType = typeof(TestBackends))]
    public void SumOfSquaresMatchesTorch(string backend)
    {
        using var f = Fixture.Open("sum_of_squares");
        foreach (string c in f.Cases)
        {
            var actual = OpRunner.Run(backend, (g, i) => g.SumOfSquares(i[0]), f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 0f, 2e-7f, $"{backend} sum_of_squares {c}");
        }
    }

    /// <summary>
    /// Past one CPU chunk (65536) and over many CUDA blocks: the double accumulation still rounds to the f32 nearest
    /// the exact sum, and repeated runs give the same bits (fixed summation order).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SumOfSquaresOp), MemberType = typeof(TestBackends))]
    public void SumOfSquaresOfALargeBufferIsExactAndRepeatable(string backend)
    {
        var random = new Random(5);
        var x = Enumerable.Range(0, 150_001).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        double exact = x.Sum(v => (double)v * v);
        using var device = TestBackends.Create(backend);
        var g = new GraphBuilder();
        g.Output("out", g.SumOfSquares(g.Input("x", DType.F32, x.Length)));
        using var plan = g.Compile(device);
        plan.SetInput<float>("x", x);
        plan.Run();
        float first = plan.ReadOutput<float>("out")[0];
        plan.Run();
        Assert.Equal(first, plan.ReadOutput<float>("out")[0]);
        Check.Close([(float)exact], [first], 0f, 2e-7f, $"{backend} sum_of_squares of {x.Length}");
    }

    /// <summary>
    /// The CUDA block reductions under the emulator's thread orders and OS-thread counts: a missing barrier or an
    /// order-dependent sum would change the bits.
    /// </summary>
    [Fact]
    public void SumOfSquaresKernelIsBitwiseIdenticalUnderEveryEmulatorSchedule()
    {
        var random = new Random(6);
        OpRunner.Feed[] feeds = [OpRunner.Feed.Uniform(random, 3f, "x", 20_011)]; // 5 blocks, the last one partial
        Func<GraphBuilder, Value[], Value> build = (g, i) => g.SumOfSquares(i[0]);
        var inOrder = EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.InOrder, 17, 1);
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Reverse, 17, 2));
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Random, 17, 3));
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(SumOfSquaresOp), MemberType = typeof(TestBackends))]
    public void SumOfSquaresGradientIsTwiceX(string backend)
    {
        var random = new Random(8);
        GradCheck.Run(backend, (g, i) => g.SumOfSquares(i[0]), [OpRunner.Feed.Uniform(random, 1f, "x", 4, 6)]);
    }

    [Fact]
    public void RejectsBadInputs()
    {
        var g = new GraphBuilder();
        Value state = g.Input("state", DType.F32, 3, 5), grad = g.Input("grad", DType.F32, 5);
        Value schedule = g.Input("schedule", DType.F32, 3), squareSum = g.Input("squareSum", DType.F32, 1);
        var adamW = new AdamWStepOp(0.9, 0.999, 1e-8, 0.01, 1.0);
        void Rejects(string message, Func<Value> build) => Assert.Contains(message, Assert.Throws<ArgumentException>(() => build()).Message);

        Rejects("adamw_step: state [2, 5] must be [3, P]", () => g.Apply(adamW, g.Input("s2", DType.F32, 2, 5), grad, schedule, squareSum));
        Rejects("adamw_step: grad [4] must be [5] for state [3, 5]", () => g.Apply(adamW, state, g.Input("g4", DType.F32, 4), schedule, squareSum));
        Rejects("adamw_step: schedule [2] must be [3]", () => g.Apply(adamW, state, grad, g.Input("sc2", DType.F32, 2), squareSum));
        Rejects("adamw_step: gradSquareSum [2] must be [1]", () => g.Apply(adamW, state, grad, schedule, g.Input("ss2", DType.F32, 2)));
        Rejects("adamw_step: grad is F16[5]; only F32 is supported", () => g.Apply(adamW, state, g.Input("g16", DType.F16, 5), schedule, squareSum));
        Rejects("adamw_step: expects 4 input(s)", () => g.Apply(adamW, state, grad, schedule));
        Rejects("adamw_step: beta1 1 must lie in [0, 1)", () => { new AdamWStepOp(1.0, 0.999, 1e-8, 0.0); return state; });
        Rejects("adamw_step: max gradient norm 0 must be > 0", () => { new AdamWStepOp(0.9, 0.999, 1e-8, 0.0, 0.0); return state; });
        Rejects("adamw_step: weight decay -0.1 must be finite and >= 0", () => { new AdamWStepOp(0.9, 0.999, 1e-8, -0.1); return state; });

        Rejects("ema_update: ema [5] and weights [3, 5] must have the same dims", () => g.Apply(new EmaUpdateOp(0.99), grad, state));
        Rejects("ema_update: decay 1.5 must lie in [0, 1]", () => g.Apply(new EmaUpdateOp(1.5), grad, grad));
        Rejects("fill: takes no inputs, got 1", () => g.Apply(new FillOp(0f, 5), grad));
        Rejects("fill: dims [2, -1] must not be negative", () => g.Fill(0f, 2, -1));
        Rejects("sum_of_squares: x is I32[4]; only F32 is supported", () => g.SumOfSquares(g.Input("ids", DType.I32, 4)));
    }

    private static double MetaDouble(Fixture f, string key) => double.Parse(f.Meta(key), CultureInfo.InvariantCulture);

    private static void Upload(IBackend device, Tensor tensor, ReadOnlySpan<float> data) =>
        device.CopyFromHost(MemoryMarshal.AsBytes(data), tensor.Data);

    private static float[] Download(IBackend device, Tensor tensor)
    {
        var values = new float[tensor.ElementCount];
        device.CopyToHost(tensor.Data, MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}
