using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Ops;

public class AdaptiveAvgPoolTests
{
    // Bins hold up to ~150 unit-scale values summed in f32 in another order than torch's (and 2-D pools average
    // rows of column averages): rounding differs by about n·2^-24 relative, ≲ 1e-5 for these sizes.
    private const float Atol = 1e-5f, Rtol = 1e-5f;

    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdaptiveAvgPoolOp), MemberType = typeof(TestBackends))]
    public void MatchesTorch(string backend)
    {
        using var fixture = Fixture.Open("adaptive_avg_pool");
        foreach (var name in fixture.Cases)
        {
            var feed = new OpRunner.Feed("x", fixture.Shape(name + ".x"), fixture.F32(name + ".x"));
            float[] actual = fixture.Meta(name + ".kind") == "1d"
                ? OpRunner.Run(backend, (g, v) => g.AdaptiveAvgPool1d(v[0], fixture.MetaInt(name + ".axis"), fixture.MetaInt(name + ".size")), feed)
                : OpRunner.Run(backend, (g, v) => g.AdaptiveAvgPool2d(v[0], fixture.MetaInt(name + ".out_h"), fixture.MetaInt(name + ".out_w")), feed);
            Check.Close(fixture.F32(name + ".out"), actual, Atol, Rtol, name);
        }
    }

    /// <summary>
    /// The image-feature shape, [1, 4096, 320] -> [1, 77, 1024], too big for a fixture: checked against a direct
    /// window average in f64 (the fixture's h4096to77 and w320to1024 cases check both dims' bins against torch).
    /// </summary>
    [Theory]
    [MemberData(nameof(TestBackends.Supporting), typeof(AdaptiveAvgPoolOp), MemberType = typeof(TestBackends))]
    public void PoolsImageFeaturesLikeADirectWindowAverage(string backend)
    {
        const int height = 4096, width = 320, outHeight = 77, outWidth = 1024;
        var random = new Random(7);
        var x = new float[height * width];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2 - 1);
        var actual = OpRunner.Run(backend, (g, v) => g.AdaptiveAvgPool2d(v[0], outHeight, outWidth),
            new OpRunner.Feed("x", [1, height, width], x));
        var expected = new float[outHeight * outWidth];
        for (int i = 0; i < outHeight; i++)
        for (int j = 0; j < outWidth; j++)
        {
            int h0 = i * height / outHeight, h1 = ((i + 1) * height + outHeight - 1) / outHeight;
            int w0 = j * width / outWidth, w1 = ((j + 1) * width + outWidth - 1) / outWidth;
            double sum = 0;
            for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++)
                sum += x[h * width + w];
            expected[i * outWidth + j] = (float)(sum / ((h1 - h0) * (w1 - w0)));
        }
        Check.Close(expected, actual, Atol, Rtol, "[1, 4096, 320] -> [1, 77, 1024]");
    }

    [Fact]
    public void RejectsBadAxesSizesAndDtypes()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 3);
        AssertInvalid(() => g.AdaptiveAvgPool1d(x, 2, 4), "adaptive_avg_pool1d", "F32[2, 3]");
        AssertInvalid(() => g.AdaptiveAvgPool1d(x, -3, 4), "adaptive_avg_pool1d", "axis -3");
        AssertInvalid(() => g.AdaptiveAvgPool1d(x, 0, 0), "adaptive_avg_pool", "positive");
        AssertInvalid(() => g.AdaptiveAvgPool2d(g.Input("v", DType.F32, 5), 2, 2), "adaptive_avg_pool2d", "F32[5]");
        AssertInvalid(() => g.AdaptiveAvgPool2d(g.Input("h", DType.F16, 1, 4, 4), 2, 2), "adaptive_avg_pool2d", "F16[1, 4, 4]");
        AssertInvalid(() => g.AdaptiveAvgPool1d(g.Input("e", DType.F32, 2, 0), 1, 3), "adaptive_avg_pool1d", "empty");
    }

    private static void AssertInvalid(Func<Value> build, string op, string detail)
    {
        var error = Assert.Throws<ArgumentException>(build);
        Assert.Contains(op, error.Message);
        Assert.Contains(detail, error.Message);
    }
}
