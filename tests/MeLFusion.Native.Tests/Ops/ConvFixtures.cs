using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

/// <summary>Reads one convolution case of a tools/reference/conv.py fixture as op inputs in op order.</summary>
internal sealed class ConvCase
{
    private ConvCase(Fixture fixture, string name)
    {
        Name = name;
        var feeds = new List<OpRunner.Feed> { Feed(fixture, name, "x"), Feed(fixture, name, "weight") };
        HasBias = fixture.Has($"{name}.bias");
        if (HasBias) feeds.Add(Feed(fixture, name, "bias"));
        HasResidual = fixture.Has($"{name}.residual");
        if (HasResidual) feeds.Add(Feed(fixture, name, "residual"));
        Feeds = [.. feeds];
        Expected = fixture.F32($"{name}.y");
        Stride = fixture.MetaInt($"{name}.stride");
        Padding = fixture.MetaInt($"{name}.padding");
        string slope = fixture.Meta($"{name}.slope");
        Slope = slope == "none" ? null : float.Parse(slope, System.Globalization.CultureInfo.InvariantCulture);
    }

    public string Name { get; }
    public OpRunner.Feed[] Feeds { get; }
    public float[] Expected { get; }
    public bool HasBias { get; }
    public bool HasResidual { get; }
    public int Stride { get; }
    public int Padding { get; }
    /// <summary>The fused input leaky-ReLU slope, or null for none.</summary>
    public float? Slope { get; }
    public OpRunner.Feed X => Feeds[0];
    public OpRunner.Feed Weight => Feeds[1];

    public Value? Bias(Value[] inputs) => HasBias ? inputs[2] : null;
    public Value? Residual(Value[] inputs) => HasResidual ? inputs[^1] : null;

    public static IEnumerable<ConvCase> All(Fixture fixture) => fixture.Cases.Select(name => new ConvCase(fixture, name));

    private static OpRunner.Feed Feed(Fixture fixture, string name, string tensor) =>
        new(tensor, fixture.Shape($"{name}.{tensor}"), fixture.F32($"{name}.{tensor}"));
}

/// <summary>
/// Direct-loop convolutions in double precision: an independent reference for inputs too large for a fixture file,
/// sized so the kernels split their work into several chunks.
/// </summary>
internal static class NaiveConv
{
    public static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = random.NextSingle() * 2 - 1;
        return values;
    }

    /// <summary>NCHW conv2d with weight [Cout, Cin, kh, kw] and bias.</summary>
    public static float[] Conv2d(float[] x, int[] xShape, float[] weight, int[] wShape, float[] bias, int stride, int padding)
    {
        int n = xShape[0], cin = xShape[1], h = xShape[2], w = xShape[3];
        int cout = wShape[0], kh = wShape[2], kw = wShape[3];
        int oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1;
        var y = new float[n * cout * oh * ow];
        Parallel.For(0, n * cout, no =>
        {
            int b = no / cout, o = no % cout;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    double sum = bias[o];
                    for (int i = 0; i < cin; i++)
                        for (int ky = 0; ky < kh; ky++)
                        {
                            int iy = oy * stride + ky - padding;
                            if (iy < 0 || iy >= h) continue;
                            for (int kx = 0; kx < kw; kx++)
                            {
                                int ix = ox * stride + kx - padding;
                                if (ix < 0 || ix >= w) continue;
                                sum += (double)x[((b * cin + i) * h + iy) * w + ix] * weight[((o * cin + i) * kh + ky) * kw + kx];
                            }
                        }
                    y[(no * oh + oy) * ow + ox] = (float)sum;
                }
        });
        return y;
    }

    /// <summary>NCL conv1d of leaky_relu(x, slope) with weight [Cout, Cin, K], bias and residual.</summary>
    public static float[] Conv1d(float[] x, int[] xShape, float[] weight, int[] wShape, float[] bias, float[] residual,
        int stride, int padding, int dilation, float slope)
    {
        int n = xShape[0], cin = xShape[1], length = xShape[2];
        int cout = wShape[0], k = wShape[2];
        int outLength = (length + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
        var y = new float[n * cout * outLength];
        Parallel.For(0, n * cout, no =>
        {
            int b = no / cout, o = no % cout;
            for (int t = 0; t < outLength; t++)
            {
                double sum = bias[o] + residual[no * outLength + t];
                for (int i = 0; i < cin; i++)
                    for (int tap = 0; tap < k; tap++)
                    {
                        int s = t * stride + tap * dilation - padding;
                        if (s < 0 || s >= length) continue;
                        float v = x[(b * cin + i) * length + s];
                        sum += (double)(v >= 0 ? v : v * slope) * weight[(o * cin + i) * k + tap];
                    }
                y[no * outLength + t] = (float)sum;
            }
        });
        return y;
    }

    /// <summary>NCL conv_transpose1d of leaky_relu(x, slope) with weight [Cin, Cout, K] and bias.</summary>
    public static float[] ConvTranspose1d(float[] x, int[] xShape, float[] weight, int[] wShape, float[] bias,
        int stride, int padding, int outputPadding, float slope)
    {
        int n = xShape[0], cin = xShape[1], length = xShape[2];
        int cout = wShape[1], k = wShape[2];
        int outLength = (length - 1) * stride - 2 * padding + k + outputPadding;
        var sums = new double[n * cout * outLength];
        Parallel.For(0, n * cout, no =>
        {
            int b = no / cout, o = no % cout;
            for (int t = 0; t < outLength; t++) sums[no * outLength + t] = bias[o];
            for (int i = 0; i < cin; i++)
                for (int l = 0; l < length; l++)
                {
                    float v = x[(b * cin + i) * length + l];
                    double a = v >= 0 ? v : v * slope;
                    for (int tap = 0; tap < k; tap++)
                    {
                        int t = l * stride + tap - padding;
                        if (t >= 0 && t < outLength) sums[no * outLength + t] += a * weight[(i * cout + o) * k + tap];
                    }
                }
        });
        return sums.Select(s => (float)s).ToArray();
    }
}
