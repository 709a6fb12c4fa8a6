using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ViewScatterTests
{
    /// <summary>The view each fixture case assigned to in torch, rebuilt with the graph's own view ops.</summary>
    private static Value View(GraphBuilder g, Value target, string name) => name switch
    {
        "slice_axis1" => g.Slice(target, 1, 2, 4),
        "permuted_slice" => g.Permute(g.Slice(target, 1, 1, 3), 2, 0, 1),
        "last_axis" => g.Slice(target, 2, 1, 3),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Pure data movement: exact.</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(ViewScatterOp), MemberType = typeof(TestBackends))]
    public void MatchesTorchAssignmentIntoAView(string backend)
    {
        using var f = Fixture.Open("view_scatter");
        foreach (string c in f.Cases)
        {
            var targetDims = f.Shape($"{c}.out");
            var actual = OpRunner.Run(backend, (g, i) =>
            {
                var view = View(g, g.Input("target", DType.F32, targetDims), c);
                return g.Apply(new ViewScatterOp(targetDims, view.Shape, view.RootElementOffset), i[0]);
            }, f.Feed($"{c}.x", "x"));
            Check.Close(f.F32($"{c}.out"), actual, 0f, 0f, $"view_scatter {c}");
        }
    }

    [Fact]
    public void RejectsAViewOutsideTheTarget()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ViewScatterOp([4, 4], new TensorShape(2, 4), 12));
        Assert.Contains("view_scatter: view [2, 4] at offset 12 leaves a target of 16 elements", ex.Message);
    }
}
