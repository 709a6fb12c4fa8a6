using MeLFusion.Native.Models;
using MeLFusion.Native.Models.Unet;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;
using MeLFusion.Native.Training;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Models;

/// <summary>
/// Autograd through a whole tiny music UNet with the visual synapse (trainable alphas) and the diffusion training loss
/// against torch autograd in float64 (tools/reference/unet_grad.py): the gradient of every parameter, the alphas
/// included, and of the noisy sample.
/// </summary>
public sealed class UNetGradientTests(ITestOutputHelper output)
{
    private const string Prefix = "unet.";

    // The loss is a mean of squared errors of a ~25-layer f32 network; its gradients reach the parameters back through
    // as many layers (softmax, GEGLU, group and layer norm, attention, convolutions, the synapse's pooling and tanh).
    // Measured worst differences from the float64 reference are 6e-6 of each tensor's largest gradient on cpu and
    // cuda-emulated, as for torch's own float32 run (8e-6). 1e-4 of that scale plus 1e-4 relative leaves room for other
    // summation orders, while a wrong mask, alpha, pooling bin or gradient path moves gradients by far more than 1e-3
    // of their scale.
    private const float ScaleTolerance = 1e-4f, Rtol = 1e-4f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AttentionKeyValueGradientOp), MemberType = typeof(TestBackends))]
    public void EveryParameterGradientMatchesTorchAutograd(string backendName)
    {
        using var f = Fixture.Open("unet_grad");
        using var backend = TestBackends.Create(backendName);
        using var weights = new WeightSet(backend, Path.Combine(Fixture.Directory, "unet_grad.safetensors"));
        var model = new UNet2DConditionModel(UNetConfig.FromDiffusersJson(f.Meta("config")));

        var g = new GraphBuilder();
        Value Input(string name, DType dtype = DType.F32) => g.Input(name, dtype, f.Shape($"input.{name}"));
        var sample = Input("sample");
        var mask = Input("mask", DType.I32);
        var features = new Dictionary<(int, int), Value> { [(1, 0)] = Input("feature_1_0"), [(1, 1)] = Input("feature_1_1") };
        var prediction = model.Build(g, weights, sample, Input("timestep"), Input("context"), mask,
            new UNetSynapse(features, TrainableAlphas: true), Prefix);
        var loss = Losses.WeightedMse(g, prediction, Input("target"), Input("weight"));
        var parameters = g.Values.Where(v => v.Kind == ValueKind.Constant).ToArray();
        var gradients = Autograd.Gradients(g, loss, g.Input("seed", DType.F32, 1), [sample, .. parameters]);
        g.Output("loss", loss);
        g.Output("grad.sample", gradients[sample]);
        for (int i = 0; i < parameters.Length; i++)
            g.Output($"grad.{i}", gradients.TryGetValue(parameters[i], out var gradient) ? gradient
                : throw new Xunit.Sdk.XunitException($"autograd gave no gradient for '{parameters[i].Name}'"));

        // Every parameter torch used (the synapse alphas among them) is a constant of the engine's graph, and nothing else.
        string[] expectedNames = [.. weights.Names.Where(n => n.StartsWith("grad." + Prefix, StringComparison.Ordinal)).Select(n => n["grad.".Length..])];
        Assert.Equal(expectedNames.Order(), parameters.Select(p => p.Name!).Distinct().Order());
        Assert.Contains(Prefix + UNetSynapse.AlphaName(1, 0), expectedNames);

        using var plan = g.Compile(backend);
        foreach (var name in new[] { "sample", "timestep", "context", "target", "weight", "feature_1_0", "feature_1_1" })
            plan.SetInput<float>(name, f.F32($"input.{name}"));
        plan.SetInput<int>("mask", f.I32("input.mask"));
        plan.SetInput<float>("seed", [1f]);
        plan.Run();

        Check.Close(f.F32("expected.loss"), plan.ReadOutput<float>("loss"), 0f, 1e-5f, $"{backendName}: loss");
        Compare(f.F32("grad.input.sample"), plan.ReadOutput<float>("grad.sample"), $"{backendName}: d sample");
        // A weight the model reads twice is two constants: its gradient is their sum.
        var byName = new Dictionary<string, float[]>();
        for (int i = 0; i < parameters.Length; i++)
        {
            var values = plan.ReadOutput<float>($"grad.{i}");
            if (byName.TryGetValue(parameters[i].Name!, out var sum))
                for (int k = 0; k < sum.Length; k++) sum[k] += values[k];
            else byName[parameters[i].Name!] = values;
        }
        foreach (var name in expectedNames)
            Compare(f.F32($"grad.{name}"), byName[name], $"{backendName}: d {name}");
    }

    private void Compare(float[] expected, float[] actual, string what)
    {
        float scale = expected.Max(MathF.Abs);
        output.WriteLine($"{what}: max |diff| {Check.MaxAbsDiff(expected, actual):E2} of scale {scale:E2}");
        Check.Close(expected, actual, ScaleTolerance * scale, Rtol, what);
    }
}
