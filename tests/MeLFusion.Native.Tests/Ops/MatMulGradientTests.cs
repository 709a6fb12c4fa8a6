using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Gradients of matmul (broadcast batch dims, transposes, strided operands) and linear.</summary>
public class MatMulGradientTests
{
    // Expected values are torch autograd in float64. Gradients are f32 GEMMs over at most 12 products of standard
    // normal values (and a sum over at most 6 batch items), so errors stay near 1e-6; an index or transpose mistake
    // moves them by O(1).
    private const float Atol = 2e-5f, Rtol = 1e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(MatMulOp), MemberType = typeof(TestBackends))]
    public void MatMulMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("matmul_grad");
        foreach (string c in f.Cases)
        {
            bool transposeA = f.MetaBool($"{c}.transpose_a"), transposeB = f.MetaBool($"{c}.transpose_b");
            var grads = GradientFixtureRunner.Gradients(backend, (g, i) => g.MatMul(i[0], i[1], transposeA, transposeB),
                [f.Feed($"{c}.a", "a"), f.Feed($"{c}.b", "b")], f.Feed($"{c}.dy", "dy"), "a", "b");
            Check.Close(f.F32($"{c}.da"), grads[0], Atol, Rtol, $"{backend}: matmul {c} da");
            Check.Close(f.F32($"{c}.db"), grads[1], Atol, Rtol, $"{backend}: matmul {c} db");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LinearOp), MemberType = typeof(TestBackends))]
    public void LinearMatchesTorchAutograd(string backend)
    {
        using var f = Fixture.Open("linear_grad");
        foreach (string c in f.Cases)
        {
            bool bias = f.MetaBool($"{c}.bias");
            string[] names = bias ? ["x", "weight", "bias"] : ["x", "weight"];
            var grads = GradientFixtureRunner.Gradients(backend, (g, i) => g.Linear(i[0], i[1], bias ? i[2] : null),
                [.. names.Select(n => f.Feed($"{c}.{n}", n))], f.Feed($"{c}.dy", "dy"), names);
            for (int i = 0; i < names.Length; i++)
                Check.Close(f.F32($"{c}.d{names[i]}"), grads[i], Atol, Rtol, $"{backend}: linear {c} d{names[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(MatMulOp), MemberType = typeof(TestBackends))]
    public void MatMulGradCheck(string backend)
    {
        var random = new Random(21);
        // Broadcast batch on both sides with both operands transposed, then attention-style permuted views.
        GradCheck.Run(backend, (g, i) => g.MatMul(i[0], i[1], transposeA: true, transposeB: true),
            [Feed.Uniform(random, 1f, "a", 2, 1, 4, 3), Feed.Uniform(random, 1f, "b", 3, 2, 4)]);
        GradCheck.Run(backend, (g, i) => g.MatMul(g.Permute(i[0], 0, 2, 1, 3), g.Permute(i[1], 0, 2, 3, 1)),
            [Feed.Uniform(random, 1f, "q", 1, 3, 2, 4), Feed.Uniform(random, 1f, "k", 1, 5, 2, 4)]);
    }

    /// <summary>
    /// One matrix b shared by a batch of a: its gradient is the folded single product over all rows, with b read plain
    /// and transposed; and a read transposed alone (no folding).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(MatMulOp), MemberType = typeof(TestBackends))]
    public void MatMulGradCheckWithASharedRightOperandAndSingleTransposes(string backend)
    {
        var random = new Random(23);
        var a = Feed.Uniform(random, 1f, "a", 2, 3, 4);
        GradCheck.Run(backend, (g, i) => g.MatMul(i[0], i[1]), [a, Feed.Uniform(random, 1f, "b", 4, 5)]);
        GradCheck.Run(backend, (g, i) => g.MatMul(i[0], i[1], transposeB: true), [a, Feed.Uniform(random, 1f, "b", 5, 4)]);
        GradCheck.Run(backend, (g, i) => g.MatMul(i[0], i[1], transposeA: true),
            [Feed.Uniform(random, 1f, "a", 2, 4, 3), Feed.Uniform(random, 1f, "b", 2, 4, 5)]);
    }

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(LinearOp), MemberType = typeof(TestBackends))]
    public void LinearGradCheck(string backend)
    {
        var random = new Random(22);
        GradCheck.Run(backend, (g, i) => g.Linear(i[0], i[1], i[2]),
            [Feed.Uniform(random, 1f, "x", 2, 3, 4), Feed.Uniform(random, 1f, "w", 5, 4), Feed.Uniform(random, 1f, "b", 5)]);
        GradCheck.Run(backend, (g, i) => g.Linear(i[0], i[1]), [Feed.Uniform(random, 1f, "x", 4, 3), Feed.Uniform(random, 1f, "w", 2, 3)]);
    }

    /// <summary>A weight shared by a batch of rows gets its gradient from one GEMM over all of them, not a reduction.</summary>
    [Fact]
    public void SharedWeightGradientIsOneProductOverAllRows()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 3, 4, 5);
        var w = g.Input("w", DType.F32, 5, 6);
        var y = g.MatMul(x, w);
        int before = g.Nodes.Count;
        var grads = Autograd.Gradients(g, y, g.Input("dy", DType.F32, 2, 3, 4, 6), [w]);
        var backward = g.Nodes.Skip(before).ToArray();
        Assert.DoesNotContain(backward, n => n.Op is ReduceSumOp);
        var product = Assert.Single(backward, n => n.Op is MatMulOp);
        Assert.Equal([24, 5], product.Inputs[0].Shape.Dims.ToArray());
        Assert.Equal([5, 6], grads[w].Shape.Dims.ToArray());
    }
}
