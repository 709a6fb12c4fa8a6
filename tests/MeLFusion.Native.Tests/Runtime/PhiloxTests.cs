using System.Globalization;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Runtime;

/// <summary>Philox4x32-10 against Random123's known answers and the stream mapping against tools/reference/philox.py.</summary>
public class PhiloxTests
{
    private static readonly string[] Streams = ["small", "wide_seed", "high_block"];

    [Theory]
    [InlineData("kat")]
    [InlineData("random")]
    public void BlocksMatchReference(string set)
    {
        using var fixture = Fixture.Open("philox");
        var counters = Words(fixture.I32($"{set}.counter"));
        var keys = Words(fixture.I32($"{set}.key"));
        var expected = Words(fixture.I32($"{set}.expected"));
        for (int v = 0; v < counters.Length / 4; v++)
        {
            var block = Philox.Generate(new Philox.Block(counters[4 * v], counters[4 * v + 1], counters[4 * v + 2], counters[4 * v + 3]),
                keys[2 * v], keys[2 * v + 1]);
            for (int lane = 0; lane < 4; lane++)
                Assert.True(expected[4 * v + lane] == block[lane], $"{set} vector {v} lane {lane}: {block[lane]:x8}, expected {expected[4 * v + lane]:x8}");
        }
    }

    [Fact]
    public void RawAndUniformStreamsAreBitExact()
    {
        using var fixture = Fixture.Open("philox");
        foreach (var name in Streams)
        {
            var (seed, offset) = StreamOf(fixture, name);
            var expectedRaw = Words(fixture.I32($"{name}.raw"));
            var raw = new uint[expectedRaw.Length];
            Philox.FillRaw(seed, offset, raw);
            Assert.Equal(expectedRaw, raw);

            var expectedUniform = fixture.F32($"{name}.uniform");
            var uniform = new float[expectedUniform.Length];
            Philox.FillUniform(seed, offset, uniform);
            Assert.Equal(expectedUniform, uniform);
        }
    }

    // Normals: both sides compute Box–Muller in f64 (cos/sin vs. cospi/sinpi) and round to f32, so they agree to an
    // ulp; 2e-7 relative plus 1e-7 absolute (values near 0) allows one ulp and catches any wrong pairing or lane.
    [Fact]
    public void NormalStreamsMatchReference()
    {
        using var fixture = Fixture.Open("philox");
        foreach (var name in Streams)
        {
            var (seed, offset) = StreamOf(fixture, name);
            var expected = fixture.F32($"{name}.normal");
            var actual = new float[expected.Length];
            Philox.FillNormal(seed, offset, actual);
            Check.Close(expected, actual, 1e-7f, 2e-7f, $"normal stream {name}");
        }
    }

    [Fact]
    public void ElementsDependOnlyOnSeedAndIndex()
    {
        const ulong seed = 1234;
        var whole = new float[103];
        Philox.FillNormal(seed, 9, whole);
        // The same elements in pieces of awkward sizes, through a generator that advances by each fill's length.
        var generator = new PhiloxGenerator(seed, 9);
        var pieces = new float[whole.Length];
        int start = 0;
        foreach (int size in new[] { 1, 2, 5, 3, 4, 88 })
        {
            generator.NextNormal(pieces.AsSpan(start, size));
            start += size;
        }
        Assert.Equal(whole, pieces);
        Assert.Equal(9UL + 103, generator.Offset);

        var shifted = new float[50];
        Philox.FillNormal(seed, 9 + 41, shifted);
        Assert.Equal(whole.AsSpan(41, 50).ToArray(), shifted);

        var otherSeed = new float[whole.Length];
        Philox.FillNormal(seed + 1, 9, otherSeed);
        Assert.NotEqual(whole, otherSeed);
    }

    [Fact]
    public void AddingGeneratedNoiseEqualsAddingTheFilledTensor()
    {
        var baseValues = Enumerable.Range(0, 37).Select(i => 0.25f * i - 3).ToArray();
        var noise = new float[37];
        Philox.FillNormal(77, 6, noise);
        var expected = baseValues.Select((b, i) => b + 0.3f * noise[i]).ToArray();
        var actual = (float[])baseValues.Clone();
        new PhiloxGenerator(77, 6).AddNextNormal(0.3f, actual);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void NormalsHaveStandardMoments()
    {
        // Deterministic (fixed seed); bounds are ~6 standard errors for 2^18 samples.
        var values = new float[1 << 18];
        new PhiloxGenerator(2024).NextNormal(values);
        double mean = values.Average(v => (double)v);
        double variance = values.Average(v => (v - mean) * (v - mean));
        double fourth = values.Average(v => Math.Pow(v - mean, 4)) / (variance * variance);
        Assert.InRange(mean, -0.012, 0.012);
        Assert.InRange(variance, 0.983, 1.017);
        Assert.InRange(fourth, 2.94, 3.06);

        var uniforms = new float[1 << 18];
        new PhiloxGenerator(2024).NextUniform(uniforms);
        Assert.All(uniforms, u => Assert.True(u > 0f && u < 1f));
        Assert.InRange(uniforms.Average(u => (double)u), 0.5 - 0.0034, 0.5 + 0.0034);
    }

    [Fact]
    public void UniformMappingIsOpenAndExact()
    {
        Assert.Equal(1f / (1 << 24), Philox.ToUniform(0));
        Assert.Equal(1f - 1f / (1 << 24), Philox.ToUniform(uint.MaxValue));
        Assert.Equal(0.5f + 1f / (1 << 24), Philox.ToUniform(0x80000000));
    }

    private static uint[] Words(int[] values) => values.Select(v => unchecked((uint)v)).ToArray();

    private static (ulong Seed, ulong Offset) StreamOf(Fixture fixture, string name) =>
        (ulong.Parse(fixture.Meta($"{name}.seed"), CultureInfo.InvariantCulture),
         ulong.Parse(fixture.Meta($"{name}.offset"), CultureInfo.InvariantCulture));
}
