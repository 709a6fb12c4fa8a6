using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class MelFilterbankTests
{
    /// <summary>
    /// The builder does the reference's float64 arithmetic in a different order and rounds once to float32, so
    /// weights (at most ~0.03) agree to a float32 ulp or two.
    /// </summary>
    [Theory]
    [InlineData("fb_audioldm")]
    [InlineData("fb_small")]
    public void SlaneyMatchesLibrosaFormula(string name)
    {
        using var fixture = Fixture.Open("mel");
        var weights = MelFilterbank.Slaney(fixture.MetaInt($"{name}.sample_rate"), fixture.MetaInt($"{name}.n_fft"),
            fixture.MetaInt($"{name}.n_mels"), fixture.MetaFloat($"{name}.fmin"), fixture.MetaFloat($"{name}.fmax"));
        Check.Close(fixture.F32($"{name}.weights"), weights, 1e-10f, 2.5e-7f, name);
    }

    [Fact]
    public void SlaneyScaleIsLinearBelowOneKilohertzAndLogarithmicAbove()
    {
        Assert.Equal(15.0, MelFilterbank.HzToMel(1000), 12);
        Assert.Equal(3.0, MelFilterbank.HzToMel(200), 12);
        Assert.Equal(15.0 + 27.0, MelFilterbank.HzToMel(6400), 9);
        Assert.Equal(8000.0, MelFilterbank.MelToHz(MelFilterbank.HzToMel(8000)), 9);
    }

    [Fact]
    public void BadFilterbankParametersAreRejected()
    {
        Assert.Contains("nMels", Assert.Throws<ArgumentException>(() => MelFilterbank.Slaney(16000, 1024, 0, 0, 8000)).Message);
        Assert.Contains("fMax", Assert.Throws<ArgumentException>(() => MelFilterbank.Slaney(16000, 1024, 64, 8000, 100)).Message);
        Assert.Contains("sampleRate", Assert.Throws<ArgumentException>(() => MelFilterbank.Slaney(0, 1024, 64, 0, 8000)).Message);
    }

    /// <summary>Float32 dot products of non-negative terms (≤ 257 of them): relative error well under 1e-6.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(MelSpectrogramOp), MemberType = typeof(TestBackends))]
    public void ProjectionMatchesTorchMatmul(string backend)
    {
        using var fixture = Fixture.Open("mel");
        var actual = OpRunner.Run(backend, (g, x) => g.MelSpectrogram(x[0], x[1]),
            new OpRunner.Feed("magnitude", fixture.Shape("project.magnitude"), fixture.F32("project.magnitude")),
            new OpRunner.Feed("filterbank", fixture.Shape("fb_small.weights"), fixture.F32("fb_small.weights")));
        Check.Close(fixture.F32("project.mel"), actual, 1e-7f, 1e-6f, "mel projection");
    }

    /// <summary>Vectorised and scalar logs are within a couple of float32 ulps of the float64 log.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LogClampOp), MemberType = typeof(TestBackends))]
    public void LogClampMatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("mel");
        foreach (var name in new[] { "log_default", "log_1e-3" })
        {
            float min = fixture.MetaFloat($"{name}.min");
            var actual = OpRunner.Run(backend, (g, x) => g.LogClamp(x[0], min),
                new OpRunner.Feed("x", fixture.Shape($"{name}.x"), fixture.F32($"{name}.x")));
            Check.Close(fixture.F32($"{name}.y"), actual, 5e-7f, 2.5e-7f, name);
        }
    }

    /// <summary>
    /// wave -> |stft| -> mel -> log(clamp(., 1e-5)) against torch in float64. The log turns relative mel error into
    /// absolute error; mel bands sum several bins, so their relative error stays near 1e-6 (6e-7 observed).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(StftMagnitudeOp), MemberType = typeof(TestBackends))]
    public void AudioLdmChainMatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("mel");
        int hop = fixture.MetaInt("chain.hop");
        var filterbank = MelFilterbank.Slaney(16000, 1024, 64, 0, 8000);
        var actual = OpRunner.Run(backend,
            (g, x) => g.LogClamp(g.MelSpectrogram(g.StftMagnitude(x[0], 1024, hop, 1024), x[1])),
            new OpRunner.Feed("wave", fixture.Shape("chain.wave"), fixture.F32("chain.wave")),
            new OpRunner.Feed("filterbank", [64, 513], filterbank));
        Check.Close(fixture.F32("chain.log_mel"), actual, 5e-6f, 0f, "log-mel chain");
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        var g = new GraphBuilder();
        var magnitude = g.Input("magnitude", DType.F32, 2, 513, 10);
        var bins = Assert.ThrowsAny<ArgumentException>(() => g.MelSpectrogram(magnitude, g.Input("fb", DType.F32, 64, 257)));
        Assert.Contains("mel_spectrogram", bins.Message);
        Assert.Contains("[64, 257]", bins.Message);
        Assert.Contains("[2, 513, 10]", bins.Message);
        var rank = Assert.ThrowsAny<ArgumentException>(() => g.MelSpectrogram(g.Input("m2", DType.F32, 513, 10), g.Input("fb2", DType.F32, 64, 513)));
        Assert.Contains("[513, 10]", rank.Message);
        var floor = Assert.ThrowsAny<ArgumentException>(() => g.LogClamp(magnitude, 0f));
        Assert.Contains("log_clamp", floor.Message);
    }
}
