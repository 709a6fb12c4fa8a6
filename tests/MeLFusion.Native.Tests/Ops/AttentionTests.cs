using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Emulation;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class AttentionTests
{
    // Outputs are convex combinations of V (|v| < 5). f32 scores carry a relative rounding error of about
    // 1e-7·√D·|score|, the exp2 polynomial about 2e-7, and the weight sums run over at most 130 keys, so ordinary
    // cases land within ~1e-6. The "large_scores" case has scores near 100, where that score error alone moves the
    // softmax weights by ~1e-5 relative; 5e-5 absolute plus 1e-4 relative covers every case with margin while a wrong
    // mask, scale or rescaling step is off by ~1e-1.
    private const float Atol = 5e-5f, Rtol = 1e-4f;

    public static TheoryData<int> VectorBits => new() { 512, 256, 128, 32 };

    /// <summary>Every backend with an attention kernel, for F16 and BF16 inputs.</summary>
    public static TheoryData<string, DType> SixteenBitBackends()
    {
        var data = new TheoryData<string, DType>();
        foreach (string backend in TestBackends.Supporting(typeof(AttentionOp)))
            foreach (var dtype in new[] { DType.F16, DType.BF16 })
                data.Add(backend, dtype);
        return data;
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchReference(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        CheckAllCases(backend);
    }

    /// <summary>Every SIMD path (AVX-512, AVX2, 128-bit, scalar) that this machine can run gives the reference result.</summary>
    [Theory]
    [MemberData(nameof(VectorBits))]
    public void EverySimdWidthMatchesTorchReference(int vectorBits)
    {
        using var backend = new CpuBackend { AttentionVectorBitsLimit = vectorBits };
        CheckAllCases(backend);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionOp), MemberType = typeof(TestBackends))]
    public void FullyMaskedRowsAreExactlyZero(string backendName)
    {
        using var backend = TestBackends.Create(backendName);
        CheckFullyMaskedRows(backend, DType.F32);
    }

    /// <summary>
    /// F16 and BF16 inputs against torch's f32 attention of the same rounded values (tools/reference/attention_f16.py);
    /// on cuda-emulated through the tensor-core kernels (WMMA).
    /// <para>
    /// Both backends round the output to the input type: half an ulp, 2^-11 relative in F16 and 2^-8 in BF16, i.e. up
    /// to 1e-3 and 8e-3 for the outputs of about 2 to 4 here. The tensor-core kernels also round the softmax weights to
    /// the input type before P·V (normalised by the sum of the rounded weights, so outputs stay convex combinations of
    /// V), which adds errors of the same order that mostly average out over the keys. The largest errors measured are
    /// 1.0e-3 (F16) and 7.9e-3 (BF16) on cpu and cuda-emulated alike; the tolerances allow about twice that, while a
    /// wrong mask, scale, padding or rescaling step is off by ~1e-1 and more.
    /// </para>
    /// </summary>
    [Theory]
    [MemberData(nameof(SixteenBitBackends))]
    public void SixteenBitInputsMatchTorchReference(string backendName, DType dtype)
    {
        using var backend = TestBackends.Create(backendName);
        using var fixture = Fixture.Open(SixteenBitFixture(dtype));
        var (atol, rtol) = SixteenBitTolerance(dtype);
        Assert.NotEmpty(fixture.Cases);
        foreach (string name in fixture.Cases)
            Check.Close(fixture.F32($"{name}.out"), RunCase(backend, fixture, name, dtype), atol, rtol, $"{dtype} {name}");
        CheckFullyMaskedRows(backend, dtype);
    }

    /// <summary>
    /// The tensor-core kernels under the emulator's in-order, reverse and random thread orders, with blocks on one to
    /// three OS threads: a missing barrier or warp synchronisation between staging a tile and loading it into fragments
    /// would read NaN, an order-dependent sum would change bits.
    /// </summary>
    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void TensorCoreKernelsAreBitwiseIdenticalUnderEverySchedule(DType dtype)
    {
        using var fixture = Fixture.Open(SixteenBitFixture(dtype));
        foreach (string name in new[] { "self_d64", "cross_d80_fully_masked" })
        {
            var (build, feeds) = Case(fixture, name, dtype);
            var inOrder = EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.InOrder, 5, 1);
            Assert.DoesNotContain(inOrder, float.IsNaN);
            Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Reverse, 5, 2));
            Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Random, 5, 3));
        }
    }

    [Fact]
    public void RejectsMismatchedShapesWithTheShapesInTheMessage()
    {
        AssertRejected("[2, 7, 64]", g => g.Attention(
            g.Input("q", DType.F32, 2, 5, 64), g.Input("k", DType.F32, 2, 7, 64), g.Input("v", DType.F32, 2, 7, 32), 2));
        AssertRejected("[1, 7, 48]", g => g.Attention(
            g.Input("q", DType.F32, 2, 5, 64), g.Input("k", DType.F32, 1, 7, 48), g.Input("v", DType.F32, 1, 7, 48), 2));
        AssertRejected("3 heads", g => g.Attention(
            g.Input("q", DType.F32, 1, 5, 64), g.Input("k", DType.F32, 1, 7, 64), g.Input("v", DType.F32, 1, 7, 64), 3));
        AssertRejected("mask", g => g.Attention(
            g.Input("q", DType.F32, 1, 5, 64), g.Input("k", DType.F32, 1, 7, 64), g.Input("v", DType.F32, 1, 7, 64), 2,
            keyPaddingMask: g.Input("m", DType.I32, 1, 5)));
        AssertRejected("mask", g => g.Attention(
            g.Input("q", DType.F32, 1, 5, 64), g.Input("k", DType.F32, 1, 7, 64), g.Input("v", DType.F32, 1, 7, 64), 2,
            keyPaddingMask: g.Input("m", DType.F32, 1, 7)));
        AssertRejected("must all be F32, all F16 or all BF16 (q F16[1, 5, 64], k F32[1, 7, 64]", g => g.Attention(
            g.Input("q", DType.F16, 1, 5, 64), g.Input("k", DType.F32, 1, 7, 64), g.Input("v", DType.F32, 1, 7, 64), 2));
        AssertRejected("v F16[1, 7, 64]", g => g.Attention(
            g.Input("q", DType.BF16, 1, 5, 64), g.Input("k", DType.BF16, 1, 7, 64), g.Input("v", DType.F16, 1, 7, 64), 2));
        AssertRejected("must all be F32, all F16 or all BF16", g => g.Attention(
            g.Input("q", DType.I32, 1, 5, 64), g.Input("k", DType.I32, 1, 7, 64), g.Input("v", DType.I32, 1, 7, 64), 2));
        AssertRejected("[1, 5, 2, 32]", g => g.Attention(
            g.Input("q", DType.F32, 1, 5, 2, 32), g.Input("k", DType.F32, 1, 7, 64), g.Input("v", DType.F32, 1, 7, 64), 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AttentionOp(0));
    }

    private static void AssertRejected(string expectedInMessage, Func<GraphBuilder, Value> build)
    {
        var error = Assert.Throws<ArgumentException>(() => build(new GraphBuilder()));
        Assert.StartsWith("attention:", error.Message);
        Assert.Contains(expectedInMessage, error.Message);
    }

    private static void CheckAllCases(IBackend backend)
    {
        using var fixture = Fixture.Open("attention");
        Assert.NotEmpty(fixture.Cases);
        foreach (string name in fixture.Cases)
            Check.Close(fixture.F32($"{name}.out"), RunCase(backend, fixture, name), Atol, Rtol, name);
    }

    private static string SixteenBitFixture(DType dtype) => dtype == DType.F16 ? "attention_f16" : "attention_bf16";

    private static (float Atol, float Rtol) SixteenBitTolerance(DType dtype) => dtype == DType.F16 ? (F16Atol, F16Rtol) : (BF16Atol, BF16Rtol);

    private const float F16Atol = 2e-3f, F16Rtol = 1e-3f, BF16Atol = 1.5e-2f, BF16Rtol = 8e-3f;

    /// <summary>Batch 1 of "cross_d80_fully_masked" has every key masked: its rows are exactly zero, batch 0's are not.</summary>
    private static void CheckFullyMaskedRows(IBackend backend, DType dtype)
    {
        using var fixture = Fixture.Open(dtype == DType.F32 ? "attention" : SixteenBitFixture(dtype));
        float[] actual = RunCase(backend, fixture, "cross_d80_fully_masked", dtype);
        int perBatch = actual.Length / 2;
        Assert.All(actual[perBatch..], x => Assert.Equal(0f, x));
        Assert.Contains(actual[..perBatch], x => x != 0f);
    }

    private static float[] RunCase(IBackend backend, Fixture fixture, string name, DType dtype = DType.F32)
    {
        var (build, feeds) = Case(fixture, name, dtype);
        return OpRunner.Run(backend, build, feeds);
    }

    /// <summary>The graph and feeds of fixture case <paramref name="name"/>, with q, k and v fed as <paramref name="dtype"/>.</summary>
    private static (Func<GraphBuilder, Value[], Value> Build, OpRunner.Feed[] Feeds) Case(Fixture fixture, string name, DType dtype)
    {
        int heads = fixture.MetaInt($"{name}.heads");
        string scaleText = fixture.Meta($"{name}.scale");
        float? scale = scaleText == "default" ? null : float.Parse(scaleText, System.Globalization.CultureInfo.InvariantCulture);
        var feeds = new List<OpRunner.Feed>
        {
            new("q", fixture.Shape($"{name}.q"), fixture.F32($"{name}.q"), dtype),
            new("k", fixture.Shape($"{name}.k"), fixture.F32($"{name}.k"), dtype),
            new("v", fixture.Shape($"{name}.v"), fixture.F32($"{name}.v"), dtype),
        };
        bool masked = fixture.Has($"{name}.mask");
        if (masked)
            feeds.Add(new("mask", fixture.Shape($"{name}.mask"), fixture.I32($"{name}.mask").Select(x => (float)x).ToArray(), DType.I32));
        return ((g, x) => g.Attention(x[0], x[1], x[2], heads, masked ? x[3] : null, scale), feeds.ToArray());
    }
}
