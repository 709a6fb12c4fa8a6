using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Vae;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Models;

public class AutoencoderKlTests
{
    private static readonly AutoencoderKlConfig Tiny = new(1, 1, 8, [1, 2], 1, 4, 0.9227914214134216f, Groups: 4);
    private static string FixturePath => Path.Combine(Fixture.Directory, "vae.safetensors");

    // Ten convolutions, group norms and an attention in f32: summation-order differences stay around 1e-6.
    private const float Atol = 2e-5f, Rtol = 1e-4f;

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void DecoderMatchesPyTorch(string backendName)
    {
        using var fixture = Fixture.Open("vae");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, FixturePath);
        var decoded = OpRunner.Run(backend, (g, i) => new AutoencoderKl(Tiny).Decode(g, weights, i[0]),
            new OpRunner.Feed("z", fixture.Shape("input.latent"), fixture.F32("input.latent")));
        Check.Close(fixture.F32("expected.decoded"), decoded, Atol, Rtol, "decoded");
    }

    [Theory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void EncoderMatchesPyTorch(string backendName)
    {
        using var fixture = Fixture.Open("vae");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, FixturePath);
        var g = new GraphBuilder();
        var mel = g.Input("mel", DType.F32, fixture.Shape("input.mel"));
        var (mean, logVariance) = new AutoencoderKl(Tiny).Encode(g, weights, mel);
        g.Output("mean", mean);
        g.Output("logvar", logVariance);
        using var plan = g.Compile(backend);
        plan.SetInput<float>("mel", fixture.F32("input.mel"));
        plan.Run();
        Assert.Equal(fixture.Shape("expected.mean"), plan.Output("mean").Shape.Dims.ToArray());
        Check.Close(fixture.F32("expected.mean"), plan.ReadOutput<float>("mean"), Atol, Rtol, "mean");
        Check.Close(fixture.F32("expected.logvar"), plan.ReadOutput<float>("logvar"), Atol, Rtol, "logvar");
    }
}
