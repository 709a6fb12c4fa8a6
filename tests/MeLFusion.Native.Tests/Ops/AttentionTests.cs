using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
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
        using var fixture = Fixture.Open("attention");
        const string name = "cross_d80_fully_masked";
        using var backend = TestBackends.Create(backendName);
        float[] actual = RunCase(backend, fixture, name);
        int perBatch = actual.Length / 2;
        Assert.All(actual[perBatch..], x => Assert.Equal(0f, x));
        Assert.Contains(actual[..perBatch], x => x != 0f);
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
        AssertRejected("F32", g => g.Attention(
            g.Input("q", DType.F16, 1, 5, 64), g.Input("k", DType.F32, 1, 7, 64), g.Input("v", DType.F32, 1, 7, 64), 2));
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

    private static float[] RunCase(IBackend backend, Fixture fixture, string name)
    {
        int heads = fixture.MetaInt($"{name}.heads");
        string scaleText = fixture.Meta($"{name}.scale");
        float? scale = scaleText == "default" ? null : float.Parse(scaleText, System.Globalization.CultureInfo.InvariantCulture);
        var feeds = new List<OpRunner.Feed>
        {
            new("q", fixture.Shape($"{name}.q"), fixture.F32($"{name}.q")),
            new("k", fixture.Shape($"{name}.k"), fixture.F32($"{name}.k")),
            new("v", fixture.Shape($"{name}.v"), fixture.F32($"{name}.v")),
        };
        bool masked = fixture.Has($"{name}.mask");
        if (masked)
            feeds.Add(new("mask", fixture.Shape($"{name}.mask"), fixture.I32($"{name}.mask").Select(x => (float)x).ToArray(), DType.I32));
        return OpRunner.Run(backend,
            (g, x) => g.Attention(x[0], x[1], x[2], heads, masked ? x[3] : null, scale),
            feeds.ToArray());
    }
}
