using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Vocoder;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Models;

public class HifiGanTests
{
    private static readonly HifiGanConfig Tiny = new(8, [5, 2, 2], [11, 4, 4], 32, [3, 7], [[1, 3, 5], [1, 3, 5]]);

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void MatchesPyTorchGenerator(string backendName)
    {
        using var fixture = Fixture.Open("hifigan");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, Path.Combine(Fixture.Directory, "hifigan.safetensors"));
        var model = new HifiGan(Tiny);
        var audio = OpRunner.Run(backend, (g, inputs) => model.Build(g, weights, inputs[0]),
            new OpRunner.Feed("mel", fixture.Shape("input.mel"), fixture.F32("input.mel")));
        Assert.Equal(2 * 13 * Tiny.HopLength, audio.Length);
        // 20 chained convolutions in f32 with different summation orders: errors stay near 1e-6 of unit-scale values.
        Check.Close(fixture.F32("expected.audio"), audio, 2e-5f, 1e-4f, "hifigan audio");
    }

    [Fact]
    public void RejectsAMelWithTheWrongChannelCount()
    {
        var g = new MeLFusion.Native.Runtime.GraphBuilder();
        var mel = g.Input("mel", MeLFusion.Native.Runtime.DType.F32, 1, 80, 10);
        Assert.Contains("[B, 8, frames]", Assert.Throws<ArgumentException>(() => new HifiGan(Tiny).Build(g, null!, mel)).Message);
    }
}
