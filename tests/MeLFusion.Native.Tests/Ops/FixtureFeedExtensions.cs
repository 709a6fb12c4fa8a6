using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Turns fixture tensors into graph feeds.</summary>
internal static class FixtureFeedExtensions
{
    /// <summary>The fixture tensor "<paramref name="tensor"/>" as an f32 graph input named <paramref name="input"/>.</summary>
    public static OpRunner.Feed Feed(this Fixture fixture, string tensor, string input) =>
        new(input, fixture.Shape(tensor), fixture.F32(tensor));
}
