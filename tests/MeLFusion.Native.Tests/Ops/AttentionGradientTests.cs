using System.Globalization;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>
/// The gradient of <see cref="AttentionOp"/> (<see cref="AttentionQueryGradientOp"/> and
/// <see cref="AttentionKeyValueGradientOp"/>) against torch autograd and finite differences.
/// </summary>
public class AttentionGradientTests
{
    // Gradients reach |7|. The f32 kernels recompute the scores (relative error ~1e-7·√D·|score|) and the softmax
    // statistics, and sum dk and dv over up to 100 queries; measured deviations from the float64 reference stay below
    // ~2e-6. 2e-5 absolute plus 1e-4 relative leaves ample margin, while a wrong scale, δ or mask is off by ~1e-1.
    private const float Atol = 2e-5f, Rtol = 1e-4f;

    public static TheoryData<int> VectorBits => new() { 512, 256, 128, 32 };

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAutograd(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        CheckAllCases(backend);
    }

    /// <summary>Every SIMD path (AVX-512, AVX2, 128-bit, scalar) that this machine can run gives the reference gradients.</summary>
    [Theory]
    [MemberData(nameof(VectorBits))]
    public void EverySimdWidthMatchesTorchAutograd(int vectorBits)
    {
        using var backend = new CpuBackend { AttentionVectorBitsLimit = vectorBits };
        CheckAllCases(backend);
    }

    /// <summary>Batch item 1 has every key masked: its output is defined as zeros, so nothing flows back through it.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void FullyMaskedRowsGiveExactlyZeroGradients(string backendName)
    {
        using var fixture = Fixture.Open("attention_grad");
        using var backend = TestBackends.Create(backendName);
        var gradients = RunCase(backend, fixture, "cross_d64_fully_masked");
        foreach (var (label, values) in new[] { ("dq", gradients.Dq), ("dk", gradients.Dk), ("dv", gradients.Dv) })
        {
            int perBatch = values.Length / 2;
            Assert.All(values[perBatch..], x => Assert.Equal(0f, x));
            Assert.True(values[..perBatch].Any(x => x != 0f), $"{label} of batch item 0 should not vanish");
        }
    }

    /// <summary>With no keys the output is zeros whatever q is: dq is exactly zero.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionQueryGradientOp), MemberType = typeof(TestBackends))]
    public void NoKeysGiveAZeroQueryGradient(string backendName)
    {
        var random = new Random(3);
        var feeds = new[]
        {
            Feed.Uniform(random, 1f, "q", 1, 3, 16), Feed.Uniform(random, 1f, "k", 1, 0, 16),
            Feed.Uniform(random, 1f, "v", 1, 0, 16), Feed.Uniform(random, 1f, "o", 1, 3, 16), Feed.Uniform(random, 1f, "dy", 1, 3, 16),
        };
        float[] dq = Run(backendName, (g, x) => g.Apply(new AttentionQueryGradientOp(2), x), feeds);
        Assert.Equal(48, dq.Length);
        Assert.All(dq, x => Assert.Equal(0f, x));
    }

    /// <summary>Self attention with padded keys, two heads; q, k and v all checked.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void SelfAttentionWithAMaskPassesGradCheck(string backend)
    {
        var random = new Random(11);
        var mask = new Feed("mask", [2, 6], [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0], DType.I32);
        GradCheck.Run(backend, (g, x) => g.Attention(x[0], x[1], x[2], 2, x[3]),
            [Feed.Uniform(random, 1f, "q", 2, 6, 16), Feed.Uniform(random, 1f, "k", 2, 6, 16), Feed.Uniform(random, 1f, "v", 2, 6, 16), mask]);
    }

    /// <summary>One input used as q, k and v: its three gradients add up.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void SharedInputAccumulatesAllThreeGradients(string backend)
    {
        var random = new Random(12);
        GradCheck.Run(backend, (g, x) => g.Attention(x[0], x[0], x[0], 1, scale: 0.5f), [Feed.Uniform(random, 1f, "x", 1, 7, 8)]);
    }

    /// <summary>Cross attention with a custom scale and a fully masked batch item; only the wanted gradients are computed.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void CrossAttentionWithCustomScalePassesGradCheck(string backend)
    {
        var random = new Random(13);
        var mask = new Feed("mask", [2, 5], [1, 0, 1, 1, 0, 0, 0, 0, 0, 0], DType.I32);
        Feed[] feeds = [Feed.Uniform(random, 1f, "q", 2, 3, 24), Feed.Uniform(random, 1f, "k", 2, 5, 24), Feed.Uniform(random, 1f, "v", 2, 5, 24), mask];
        Value Build(GraphBuilder g, Value[] x) => g.Attention(x[0], x[1], x[2], 3, x[3], scale: 0.8f);
        GradCheck.Run(backend, Build, feeds);
        GradCheck.Run(backend, Build, feeds, differentiate: ["q"]);
        GradCheck.Run(backend, Build, feeds, differentiate: ["v"]);
    }

    /// <summary>Head dim 160: the GPU kernels shrink their tiles to fit shared memory (dk/dv to 16 queries × 8 keys).</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void LargeHeadDimPassesGradCheck(string backend)
    {
        var random = new Random(14);
        GradCheck.Run(backend, (g, x) => g.Attention(x[0], x[1], x[2], 1),
            [Feed.Uniform(random, 0.5f, "q", 1, 18, 160), Feed.Uniform(random, 0.5f, "k", 1, 11, 160), Feed.Uniform(random, 1f, "v", 1, 11, 160)]);
    }

    /// <summary>
    /// The CUDA kernels under the emulator with threads in index order, reversed and random, on 1 to 3 OS threads: a
    /// missing barrier would read unwritten (NaN) shared memory or a stale tile, and an order-dependent sum would change
    /// bits. The shapes span several query and key tiles, with masked keys. Also the CPU's values, within tolerance.
    /// </summary>
    [Theory]
    [InlineData("query")]
    [InlineData("key_value")]
    public void CudaKernelsAreBitwiseIdenticalUnderEveryEmulatorSchedule(string gradient)
    {
        var random = new Random(15);
        var mask = new Feed("mask", [2, 37], [.. Enumerable.Range(0, 74).Select(i => i % 37 < 30 - 9 * (i / 37) || i % 5 == 0 ? 1f : 0f)], DType.I32);
        Feed[] feeds =
        [
            Feed.Uniform(random, 1f, "q", 2, 45, 80), Feed.Uniform(random, 1f, "k", 2, 37, 80), Feed.Uniform(random, 1f, "v", 2, 37, 80),
            Feed.Uniform(random, 1f, "o", 2, 45, 80), Feed.Uniform(random, 1f, "dy", 2, 45, 80), mask,
        ];
        Op op = gradient == "query" ? new AttentionQueryGradientOp(2) : new AttentionKeyValueGradientOp(2);
        Value Build(GraphBuilder g, Value[] x) => g.Apply(op, x);
        var inOrder = Emulation.EmulatedDevice.RunGraph(Build, feeds, EmulatorSchedule.InOrder, 17, 1);
        Assert.DoesNotContain(inOrder, float.IsNaN);
        Assert.Equal(inOrder, Emulation.EmulatedDevice.RunGraph(Build, feeds, EmulatorSchedule.Reverse, 17, 2));
        Assert.Equal(inOrder, Emulation.EmulatedDevice.RunGraph(Build, feeds, EmulatorSchedule.Random, 17, 3));
        Check.Close(Run("cpu", Build, feeds), inOrder, Atol, Rtol, gradient);
    }

    [Fact]
    public void OnlyTheNeededBackwardOpsAreAppended()
    {
        var g = new GraphBuilder();
        var q = g.Input("q", DType.F32, 1, 4, 8);
        var k = g.Input("k", DType.F32, 1, 5, 8);
        var v = g.Input("v", DType.F32, 1, 5, 8);
        var y = g.Attention(q, k, v, 1);
        var gradients = Autograd.Gradients(g, y, g.Input("dy", DType.F32, 1, 4, 8), [q]);
        Assert.Equal([1, 4, 8], gradients[q].Shape.Dims.ToArray());
        Assert.Contains(g.Nodes, n => n.Op is AttentionQueryGradientOp);
        Assert.DoesNotContain(g.Nodes, n => n.Op is AttentionKeyValueGradientOp);
    }

    [Fact]
    public void RejectsBadInputsWithTheShapesInTheMessage()
    {
        AssertRejected<AttentionQueryGradientOp>("o and dy", g => Apply(g, new AttentionQueryGradientOp(2), 5, 7, 64, oTokens: 4));
        AssertRejected<AttentionKeyValueGradientOp>("dy F32[2, 5, 32]", g => Apply(g, new AttentionKeyValueGradientOp(2), 5, 7, 64, dyChannels: 32));
        AssertRejected<AttentionKeyValueGradientOp>("[2, 7, 32]", g => Apply(g, new AttentionKeyValueGradientOp(2), 5, 7, 64, vChannels: 32));
        AssertRejected<AttentionQueryGradientOp>("3 heads", g => Apply(g, new AttentionQueryGradientOp(3), 5, 7, 64));
        AssertRejected<AttentionQueryGradientOp>("mask", g => Apply(g, new AttentionQueryGradientOp(2), 5, 7, 64, maskKeys: 5));
        AssertRejected<AttentionKeyValueGradientOp>("got 3 inputs", g => g.Apply(new AttentionKeyValueGradientOp(2),
            g.Input("q", DType.F32, 2, 5, 64), g.Input("k", DType.F32, 2, 7, 64), g.Input("v", DType.F32, 2, 7, 64)));
        AssertRejected<AttentionQueryGradientOp>("o and dy", g => g.Apply(new AttentionQueryGradientOp(2),
            g.Input("q", DType.F32, 2, 5, 64), g.Input("k", DType.F32, 2, 7, 64), g.Input("v", DType.F32, 2, 7, 64),
            g.Input("o", DType.F16, 2, 5, 64), g.Input("dy", DType.F32, 2, 5, 64)));
        AssertRejected<AttentionKeyValueGradientOp>("F32 only, q, k and v are BF16 (q BF16[2, 5, 64]", g => g.Apply(
            new AttentionKeyValueGradientOp(2), g.Input("q", DType.BF16, 2, 5, 64), g.Input("k", DType.BF16, 2, 7, 64),
            g.Input("v", DType.BF16, 2, 7, 64), g.Input("o", DType.BF16, 2, 5, 64), g.Input("dy", DType.BF16, 2, 5, 64)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionKeyValueGradientOp(0));
    }

    /// <summary>
    /// The forward takes F16 and BF16, its gradient only F32: differentiating a 16-bit attention fails when the backward
    /// op is appended, with the gradient op and the type in the message.
    /// </summary>
    [Theory]
    [InlineData(DType.F16, 0, "attention_query_gradient")]
    [InlineData(DType.BF16, 0, "attention_query_gradient")]
    [InlineData(DType.F16, 2, "attention_key_value_gradient")]
    [InlineData(DType.BF16, 1, "attention_key_value_gradient")]
    public void SixteenBitAttentionIsNotDifferentiable(DType dtype, int differentiated, string gradientOp)
    {
        var g = new GraphBuilder();
        Value[] inputs = [g.Input("q", dtype, 1, 4, 8), g.Input("k", dtype, 1, 5, 8), g.Input("v", dtype, 1, 5, 8)];
        var y = g.Attention(inputs[0], inputs[1], inputs[2], 2);
        Assert.Equal(dtype, y.DType);
        var error = Assert.Throws<ArgumentException>(() =>
            Autograd.Gradients(g, y, g.Input("dy", dtype, 1, 4, 8), [inputs[differentiated]]));
        Assert.StartsWith(gradientOp + ":", error.Message);
        Assert.Contains($"the attention gradient is F32 only, q, k and v are {dtype}", error.Message);
    }

    /// <summary>A gradient op over q [2, N, 64], k [2, M, 64], v, o and dy, with one dimension made wrong on request.</summary>
    private static Value Apply(GraphBuilder g, Op op, int queries, int keys, int channels, int? oTokens = null,
        int? dyChannels = null, int? vChannels = null, int? maskKeys = null)
    {
        var inputs = new List<Value>
        {
            g.Input("q", DType.F32, 2, queries, channels),
            g.Input("k", DType.F32, 2, keys, channels),
            g.Input("v", DType.F32, 2, keys, vChannels ?? channels),
            g.Input("o", DType.F32, 2, oTokens ?? queries, channels),
            g.Input("dy", DType.F32, 2, queries, dyChannels ?? channels),
        };
        if (maskKeys is { } m) inputs.Add(g.Input("mask", DType.I32, 2, m));
        return g.Apply(op, [.. inputs]);
    }

    private static void AssertRejected<TOp>(string expectedInMessage, Func<GraphBuilder, Value> build) where TOp : Op
    {
        var error = Assert.Throws<ArgumentException>(() => build(new GraphBuilder()));
        string name = typeof(TOp) == typeof(AttentionQueryGradientOp) ? "attention_query_gradient" : "attention_key_value_gradient";
        Assert.StartsWith(name + ":", error.Message);
        Assert.Contains(expectedInMessage, error.Message);
    }

    private static void CheckAllCases(IBackend backend)
    {
        using var fixture = Fixture.Open("attention_grad");
        Assert.NotEmpty(fixture.Cases);
        foreach (string name in fixture.Cases)
        {
            var (dq, dk, dv) = RunCase(backend, fixture, name);
            Check.Close(fixture.F32($"{name}.dq"), dq, Atol, Rtol, $"{name} dq");
            Check.Close(fixture.F32($"{name}.dk"), dk, Atol, Rtol, $"{name} dk");
            Check.Close(fixture.F32($"{name}.dv"), dv, Atol, Rtol, $"{name} dv");
        }
    }

    /// <summary>Forward attention, then autograd seeded with the fixture's dy; returns dq, dk, dv.</summary>
    private static (float[] Dq, float[] Dk, float[] Dv) RunCase(IBackend backend, Fixture fixture, string name)
    {
        string scaleText = fixture.Meta($"{name}.scale");
        float? scale = scaleText == "default" ? null : float.Parse(scaleText, CultureInfo.InvariantCulture);
        var g = new GraphBuilder();
        Value Input(string tensor) => g.Input(tensor, DType.F32, fixture.Shape($"{name}.{tensor}"));
        Value q = Input("q"), k = Input("k"), v = Input("v"), dy = Input("dy");
        bool masked = fixture.Has($"{name}.mask");
        var mask = masked ? g.Input("mask", DType.I32, fixture.Shape($"{name}.mask")) : null;
        var y = g.Attention(q, k, v, fixture.MetaInt($"{name}.heads"), mask, scale);
        var gradients = Autograd.Gradients(g, y, dy, [q, k, v]);
        g.Output("dq", gradients[q]);
        g.Output("dk", gradients[k]);
        g.Output("dv", gradients[v]);
        using var plan = g.Compile(backend);
        foreach (var tensor in new[] { "q", "k", "v", "dy" })
            plan.SetInput<float>(tensor, fixture.F32($"{name}.{tensor}"));
        if (masked) plan.SetInput<int>("mask", fixture.I32($"{name}.mask"));
        plan.Run();
        return (plan.ReadOutput<float>("dq"), plan.ReadOutput<float>("dk"), plan.ReadOutput<float>("dv"));
    }
}
