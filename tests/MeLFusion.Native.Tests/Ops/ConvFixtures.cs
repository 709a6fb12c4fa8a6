using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Reads one convolution case of a tools/reference/conv.py fixture as op inputs in op order.</summary>
internal sealed class ConvCase
{
    private ConvCase(Fixture fixture, string name)
    {
        Name = name;
        var feeds = new List<OpRunner.Feed> { Feed(fixture, name, "x"), Feed(fixture, name, "weight") };
        HasBias = fixture.Has($"{name}.bias");
        if (HasBias) feeds.Add(Feed(fixture, name, "bias"));
        HasResidual = fixture.Has($"{name}.residual");
        if (HasResidual) feeds.Add(Feed(fixture, name, "residual"));
        Feeds = [.. feeds];
        Expected = fixture.F32($"{name}.y");
        Stride = fixture.MetaInt($"{name}.stride");
        Padding = fixture.MetaInt($"{name}.padding");
        string slope = fixture.Meta($"{name}.slope");
        Slope = slope == "none" ? null : float.Parse(slope, System.Globalization.CultureInfo.InvariantCulture);
    }

    public string Name { get; }
    public OpRunner.Feed[] Feeds { get; }
    public float[] Expected { get; }
    public bool HasBias { get; }
    public bool HasResidual { get; }
    public int Stride { get; }
    public int Padding { get; }
    /// <summary>The fused input leaky-ReLU slope, or null for none.</summary>
    public float? Slope { get; }
    public OpRunner.Feed X => Feeds[0];
    public OpRunner.Feed Weight => Feeds[1];

    public Value? Bias(Value[] inputs) => HasBias ? inputs[2] : null;
    public Value? Residual(Value[] inputs) => HasResidual ? inputs[^1] : null;

    public static IEnumerable<ConvCase> All(Fixture fixture) => fixture.Cases.Select(name => new ConvCase(fixture, name));

    private static OpRunner.Feed Feed(Fixture fixture, string name, string tensor) =>
        new(tensor, fixture.Shape($"{name}.{tensor}"), fixture.F32($"{name}.{tensor}"));
}
