using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Runtime;

public class AutogradTests
{
    /// <summary>Reshape, permute and slice views, and a value used twice (its gradients add up).</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ViewScatterOp), MemberType = typeof(TestBackends))]
    public void GradientsFlowThroughViewsAndAccumulate(string backend)
    {
        var random = new Random(9);
        GradCheck.Run(backend, (g, i) =>
        {
            var x = i[0];
            var permuted = g.Contiguous(g.Permute(g.Reshape(x, 3, 4, 2), 2, 0, 1)); // [2, 3, 4]
            var sliced = g.Slice(permuted, 2, 1, 2);                               // [2, 3, 2]
            return g.Mul(g.Contiguous(sliced), g.Slice(g.Reshape(x, 2, 3, 4), 2, 0, 2));
        }, [Feed.Uniform(random, 1f, "x", 6, 4)]);
    }

    [Fact]
    public void OnlyValuesOnAPathToTheLossGetGradients()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3);
        var unused = g.Input("unused", DType.F32, 3);
        g.Scale(unused, 2f);
        var loss = g.Sum(g.Mul(x, x));
        var grads = Autograd.Gradients(g, loss, g.Input("seed", DType.F32, 1), [x, unused]);
        Assert.True(grads.ContainsKey(x));
        Assert.False(grads.ContainsKey(unused));
    }

    [Fact]
    public void AnOpWithoutAGradientIsNamed()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3, 4);
        var loss = g.Sum(g.Apply(new ViewScatterOp([3, 8], x.Shape, 0), x));
        var ex = Assert.Throws<NotSupportedException>(() => Autograd.Gradients(g, loss, g.Input("seed", DType.F32, 1), [x]));
        Assert.Contains("op 'view_scatter' has no gradient", ex.Message);
    }

    /// <summary>Assign writes into a constant that outlives the run: running twice applies the update twice.</summary>
    [Fact]
    public void AssignUpdatesAConstantInPlaceAcrossRuns()
    {
        using var backend = TestBackends.Create("cpu");
        using var buffer = backend.Allocate(4 * sizeof(float), "state");
        var state = buffer.View(DType.F32, new TensorShape(4));
        backend.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes<float>([1f, 2f, 3f, 4f]), state.Data);
        var g = new GraphBuilder();
        var constant = g.Constant("state", state);
        var step = g.Input("step", DType.F32, 4);
        g.Assign(constant, new BinaryOp(BinaryOperation.Add), constant, step);
        using var plan = g.Compile(backend);
        plan.SetInput<float>("step", [0.5f, 0.5f, 0.5f, 0.5f]);
        plan.Run();
        plan.Run();
        var result = new float[4];
        backend.CopyToHost(state.Data, System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()));
        Assert.Equal([2f, 3f, 4f, 5f], result);
    }

    [Fact]
    public void AssignRejectsArenaValues()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 3);
        var ex = Assert.Throws<ArgumentException>(() => g.Assign(x, new BinaryOp(BinaryOperation.Add), x, x));
        Assert.Contains("must be a contiguous constant", ex.Message);
    }

    /// <summary>
    /// A chain of checkpointed blocks: recomputing them gives bit-identical gradients (the same ops in the same order)
    /// with a smaller arena, since the blocks' insides no longer live until the backward pass.
    /// </summary>
    [Fact]
    public void RecomputedSegmentsGiveTheSameGradientsInLessMemory()
    {
        (float[] Gradient, long Arena) Run(bool recompute)
        {
            using var backend = TestBackends.Create("cpu");
            var g = new GraphBuilder();
            var x = g.Input("x", DType.F32, 64, 256);
            var h = x;
            for (int block = 0; block < 6; block++)
                using (g.Checkpoint())
                    h = g.Add(g.Mul(g.Tanh(g.Scale(h, 0.9f)), g.Silu(h)), h);
            var loss = g.Sum(g.Mul(h, h));
            var gradient = Autograd.Gradients(g, loss, g.Input("seed", DType.F32, 1), [x], recompute)[x];
            g.Output("grad", gradient);
            using var plan = g.Compile(backend);
            plan.SetInput<float>("x", Enumerable.Range(0, 64 * 256).Select(i => MathF.Sin(i * 0.37f)).ToArray());
            plan.SetInput<float>("seed", [1f]);
            plan.Run();
            return (plan.ReadOutput<float>("grad"), plan.Memory.ArenaBytes);
        }
        var kept = Run(recompute: false);
        var recomputed = Run(recompute: true);
        Assert.Equal(kept.Gradient, recomputed.Gradient);
        Assert.True(recomputed.Arena < kept.Arena * 0.75, $"arena {recomputed.Arena} bytes recomputing vs {kept.Arena} keeping");
    }
}
