using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>
/// Autograd across op boundaries: diffusers' feed-forward with its residual, y = x + linear(geglu(linear(layer_norm(x)))),
/// against torch autograd in float64 (tools/reference/transformer_block_grad.py).
/// </summary>
public class TransformerBlockGradientTests
{
    private static readonly string[] Parameters = ["x", "ln_weight", "ln_bias", "w1", "b1", "w2", "b2"];

    private static Value Block(GraphBuilder g, Value[] i, float eps)
    {
        var normed = g.LayerNorm(i[0], i[1], i[2], eps);
        var hidden = g.Geglu(g.Linear(normed, i[3], i[4]));
        return g.Add(i[0], g.Linear(hidden, i[5], i[6]));
    }

    /// <summary>The forward pass alone: checks the fixture's wiring (and the ops) while the backward test waits.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GegluGradientOp), MemberType = typeof(TestBackends))]
    public void ForwardMatchesTorch(string backend)
    {
        using var f = Fixture.Open("transformer_block_grad");
        float eps = f.MetaFloat("block.eps");
        var y = OpRunner.Run(backend, (g, i) => Block(g, i, eps), [.. Parameters.Select(p => f.Feed($"block.{p}", p))]);
        Check.Close(f.F32("block.y"), y, 1e-5f, 1e-5f, $"{backend} block forward");
    }

    /// <summary>Gradients of x and every parameter; the layer norm, GEGLU and residual gradients meet linear's.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(GegluGradientOp), MemberType = typeof(TestBackends))]
    public void GradientsMatchTorchAutograd(string backend)
    {
        using var f = Fixture.Open("transformer_block_grad");
        float eps = f.MetaFloat("block.eps");
        var grads = TorchBackward.Run(backend, (g, i) => Block(g, i, eps), [.. Parameters.Select(p => f.Feed($"block.{p}", p))],
            f.F32("block.dy"), Parameters);
        foreach (var p in Parameters)
            Check.Close(f.F32($"block.d{p}"), grads[p], 2e-5f, 1e-4f, $"{backend} block: d{p}");
    }
}
