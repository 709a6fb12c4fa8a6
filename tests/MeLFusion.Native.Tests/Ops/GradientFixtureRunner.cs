using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Runs an op's backward pass for a given output gradient, the way torch's <c>y.backward(dy)</c> does.</summary>
internal static class GradientFixtureRunner
{
    /// <summary>
    /// Builds <paramref name="build"/> over <paramref name="feeds"/>, seeds its output with
    /// <paramref name="outputGradient"/> (the output's dims) and returns the gradients of the feeds named in
    /// <paramref name="wrt"/>, in that order.
    /// </summary>
    public static float[][] Gradients(string backendName, Func<GraphBuilder, Value[], Value> build, OpRunner.Feed[] feeds,
        OpRunner.Feed outputGradient, params string[] wrt)
    {
        using var backend = TestBackends.Create(backendName);
        var g = new GraphBuilder();
        var inputs = feeds.Select(f => g.Input(f.Name, f.DType, f.Shape)).ToArray();
        var output = build(g, inputs);
        var seed = g.Input(outputGradient.Name, DType.F32, outputGradient.Shape);
        var targets = wrt.Select(name => inputs[Array.FindIndex(feeds, f => f.Name == name)]).ToArray();
        var gradients = Autograd.Gradients(g, output, seed, targets);
        for (int i = 0; i < wrt.Length; i++)
            g.Output("grad." + wrt[i], gradients.TryGetValue(targets[i], out var gradient) ? gradient
                : throw new Xunit.Sdk.XunitException($"autograd gave no gradient for '{wrt[i]}'"));
        using var plan = g.Compile(backend);
        foreach (var f in feeds) OpRunner.SetInput(plan, f);
        OpRunner.SetInput(plan, outputGradient);
        plan.Run();
        return wrt.Select(name => plan.ReadOutput<float>("grad." + name)).ToArray();
    }
}
