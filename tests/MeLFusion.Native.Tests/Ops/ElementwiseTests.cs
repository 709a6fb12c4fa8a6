using System.Globalization;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class ElementwiseTests
{
    /// <summary>
    /// Expected values are torch's f32 operators on the same f32 inputs. Each output is one IEEE operation, exactly
    /// rounded by both, so results must be identical (tolerance 0), whatever the broadcasting or view.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(BinaryOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var f = Fixture.Open("elementwise");
        foreach (string c in f.Cases)
        {
            string op = f.Meta($"{c}.op");
            string? view = TryMeta(f, $"{c}.view");
            float[] actual;
            if (op is "scale" or "add_scalar")
            {
                float value = f.MetaFloat($"{c}.value");
                actual = OpRunner.Run(backend, (g, i) => op == "scale" ? g.Scale(View(g, i[0], view), value) : g.AddScalar(View(g, i[0], view), value),
                    f.Feed($"{c}.a", "a"));
            }
            else
            {
                Func<GraphBuilder, Value, Value, Value> apply = op switch
                {
                    "add" => (g, a, b) => g.Add(a, b),
                    "sub" => (g, a, b) => g.Sub(a, b),
                    "mul" => (g, a, b) => g.Mul(a, b),
                    "div" => (g, a, b) => g.Div(a, b),
                    _ => throw new InvalidOperationException($"fixture case {c}: unknown op '{op}'"),
                };
                actual = OpRunner.Run(backend, (g, i) => apply(g, View(g, i[0], view), i[1]), f.Feed($"{c}.a", "a"), f.Feed($"{c}.b", "b"));
            }
            Check.Close(f.F32($"{c}.out"), actual, 0f, 0f, $"{op} {c}");
        }
    }

    /// <summary>Chains where outputs may take over an intermediate input's memory, and where they must not (broadcast first input).</summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(BinaryOp), MemberType = typeof(TestBackends))]
    public void ChainsThroughIntermediates(string backend)
    {
        float[] a = Enumerable.Range(0, 24).Select(i => i * 0.5f - 3f).ToArray();
        float[] b = [1f, -2f, 0.25f];
        var actual = OpRunner.Run(backend, (g, i) =>
            {
                var sum = g.Add(i[0], i[1]);          // [2, 4, 3] + [3]
                var product = g.Mul(sum, sum);        // same value twice: must not alias
                var scaled = g.Scale(product, 0.5f);  // in place on product
                var shifted = g.AddScalar(g.Scale(i[1], 2f), 1f); // [3] intermediate
                return g.Sub(shifted, scaled);        // broadcast first input: output is larger than it
            },
            new OpRunner.Feed("a", [2, 4, 3], a), new OpRunner.Feed("b", [3], b));
        var expected = new float[24];
        for (int i = 0; i < 24; i++)
        {
            float s = a[i] + b[i % 3];
            expected[i] = (b[i % 3] * 2f + 1f) - s * s * 0.5f;
        }
        Check.Close(expected, actual, 0f, 0f, "chain");
    }

    [Fact]
    public void RejectsShapesThatDoNotBroadcast()
    {
        var g = new GraphBuilder();
        var a = g.Input("a", DType.F32, 2, 3);
        var b = g.Input("b", DType.F32, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.Add(a, b));
        Assert.Equal("add: shapes [2, 3] and [4] do not broadcast (dim -1: 3 vs 4)", ex.Message);
    }

    [Fact]
    public void RejectsMixedDTypes()
    {
        var g = new GraphBuilder();
        var a = g.Input("a", DType.F32, 4);
        var b = g.Input("b", DType.F16, 4);
        var ex = Assert.Throws<ArgumentException>(() => g.Div(a, b));
        Assert.Contains("div: b is F16[4]; only F32 is supported", ex.Message);
    }

    private static string? TryMeta(Fixture f, string key)
    {
        try { return f.Meta(key); }
        catch (KeyNotFoundException) { return null; }
    }

    /// <summary>Applies a fixture's "permute:0,2,1" or "slice:axis,start,length" view, or nothing.</summary>
    private static Value View(GraphBuilder g, Value x, string? view)
    {
        if (view is null) return x;
        var (kind, args) = (view[..view.IndexOf(':')], view[(view.IndexOf(':') + 1)..].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray());
        return kind switch
        {
            "permute" => g.Permute(x, args),
            "slice" => g.Slice(x, args[0], args[1], args[2]),
            _ => throw new InvalidOperationException($"unknown view '{view}'"),
        };
    }
}
