using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using static MeLFusion.Native.Tests.Support.OpRunner;

namespace MeLFusion.Native.Tests.Support;

/// <summary>
/// Finite-difference gradient checks. The scalar checked is L = Σ out·P for a fixed random projection P, so every output
/// element contributes with its own weight. Autograd's dL/dx (the backward ops on the backend under test) is compared
/// with the central difference (L(x+h) - L(x-h)) / 2h per element, where L is summed in double on the host from the
/// forward graph's f32 output.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Checks the gradients of the f32 feeds named in <paramref name="differentiate"/> (all f32 feeds when null). Each
    /// element is checked when an input has at most <paramref name="maxElementsPerInput"/>, else that many random ones.
    /// Pass when |analytic - numeric| &lt;= atol + rtol·|numeric| everywhere.
    /// </summary>
    public static void Run(string backendName, Func<GraphBuilder, Value[], Value> build, Feed[] feeds,
        float step = 1e-2f, float atol = 2e-3f, float rtol = 2e-2f, string[]? differentiate = null, int maxElementsPerInput = 48, int seed = 7)
    {
        using var backend = TestBackends.Create(backendName);
        var random = new Random(seed);
        var checkedFeeds = feeds.Where(f => f.DType == DType.F32 && (differentiate is null || differentiate.Contains(f.Name))).ToArray();
        Assert.NotEmpty(checkedFeeds);

        // Forward + backward: the analytic gradients.
        var g = new GraphBuilder();
        var inputs = feeds.Select(f => g.Input(f.Name, f.DType, f.Shape)).ToArray();
        var output = build(g, inputs);
        var projectionData = Enumerable.Range(0, (int)output.Shape.ElementCount).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var projection = g.Input("gradcheck.projection", DType.F32, output.Shape.Dims.ToArray());
        var loss = g.Sum(g.Mul(output, projection));
        var lossSeed = g.Input("gradcheck.seed", DType.F32, 1);
        var wrt = checkedFeeds.Select(f => inputs[Array.IndexOf(feeds, f)]).ToArray();
        var gradients = Autograd.Gradients(g, loss, lossSeed, wrt);
        foreach (var (feed, value) in checkedFeeds.Zip(wrt))
            g.Output("grad." + feed.Name, gradients.TryGetValue(value, out var grad) ? grad
                : throw new Xunit.Sdk.XunitException($"autograd gave no gradient for '{feed.Name}'"));
        using var backward = g.Compile(backend);
        foreach (var f in feeds) SetInput(backward, f);
        backward.SetInput<float>("gradcheck.projection", projectionData);
        backward.SetInput<float>("gradcheck.seed", [1f]);
        backward.Run();

        // Forward only: the loss at perturbed inputs.
        var fg = new GraphBuilder();
        var forwardInputs = feeds.Select(f => fg.Input(f.Name, f.DType, f.Shape)).ToArray();
        fg.Output("out", build(fg, forwardInputs));
        using var forward = fg.Compile(backend);
        foreach (var f in feeds) SetInput(forward, f);
        double Loss()
        {
            forward.Run();
            var values = forward.ReadOutput<float>("out");
            double sum = 0;
            for (int i = 0; i < values.Length; i++) sum += (double)values[i] * projectionData[i];
            return sum;
        }

        foreach (var feed in checkedFeeds)
        {
            var analytic = backward.ReadOutput<float>("grad." + feed.Name);
            var data = (float[])feed.Data.Clone();
            var positions = data.Length <= maxElementsPerInput
                ? Enumerable.Range(0, data.Length).ToArray()
                : Enumerable.Range(0, maxElementsPerInput).Select(_ => random.Next(data.Length)).Distinct().ToArray();
            var numeric = new float[positions.Length];
            var picked = new float[positions.Length];
            for (int p = 0; p < positions.Length; p++)
            {
                int i = positions[p];
                float original = data[i];
                data[i] = original + step;
                forward.SetInput<float>(feed.Name, data);
                double plus = Loss();
                data[i] = original - step;
                forward.SetInput<float>(feed.Name, data);
                double minus = Loss();
                data[i] = original;
                numeric[p] = (float)((plus - minus) / (2.0 * step));
                picked[p] = analytic[i];
            }
            forward.SetInput<float>(feed.Name, data);
            Check.Close(numeric, picked, atol, rtol, $"{backendName}: d loss / d {feed.Name} (at elements {string.Join(",", positions.Take(8))}...)");
        }
    }
}
