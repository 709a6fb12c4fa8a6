using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>torch's y.backward(dy) on an engine backend, for comparing gradients with PyTorch autograd fixtures.</summary>
internal static class TorchBackward
{
    /// <summary>
    /// Builds y = <paramref name="build"/>(inputs), appends autograd seeded with <paramref name="dy"/> (y's dims) and
    /// returns the gradients of the feeds named in <paramref name="wrt"/>, and y itself as "y".
    /// </summary>
    public static Dictionary<string, float[]> Run(string backend, Func<GraphBuilder, Value[], Value> build,
        OpRunner.Feed[] feeds, float[] dy, params string[] wrt)
    {
        using var device = TestBackends.Create(backend);
        var g = new GraphBuilder();
        var inputs = feeds.Select(f => g.Input(f.Name, f.DType, f.Shape)).ToArray();
        var y = build(g, inputs);
        var seed = g.Input("torch.dy", DType.F32, y.Shape.Dims.ToArray());
        var targets = wrt.Select(name => inputs[Array.FindIndex(feeds, f => f.Name == name)]).ToArray();
        var gradients = Autograd.Gradients(g, y, seed, targets);
        foreach (var (name, value) in wrt.Zip(targets))
            g.Output("grad." + name, gradients.TryGetValue(value, out var gradient) ? gradient
                : throw new Xunit.Sdk.XunitException($"autograd gave no gradient for '{name}'"));
        g.Output("y", y);
        using var plan = g.Compile(device);
        foreach (var f in feeds) OpRunner.SetInput(plan, f);
        plan.SetInput<float>("torch.dy", dy);
        plan.Run();
        var result = wrt.ToDictionary(name => name, name => plan.ReadOutput<float>("grad." + name));
        result["y"] = plan.ReadOutput<float>("y");
        return result;
    }
}
