namespace MeLFusion.Native.IO.Image;

/// <summary>Resizing and tensor conversion for model inputs.</summary>
public static class ImageTransforms
{
    /// <summary>
    /// Resizes with a separable triangle (bilinear) filter whose support widens when shrinking, so downscaling
    /// averages instead of aliasing (Pillow's BILINEAR behaviour). Pixel centres are aligned as in Pillow.
    /// </summary>
    public static RgbImage Resize(RgbImage image, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var horizontal = new float[image.Height * width * 3];
        var (xStart, xWeights, xTaps) = Weights(image.Width, width);
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    float sum = 0;
                    for (int k = 0; k < xTaps; k++)
                    {
                        float w = xWeights[x * xTaps + k];
                        if (w != 0) sum += w * image[y, xStart[x] + k, c];
                    }
                    horizontal[(y * width + x) * 3 + c] = sum;
                }
        var (yStart, yWeights, yTaps) = Weights(image.Height, height);
        var pixels = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    float sum = 0;
                    for (int k = 0; k < yTaps; k++)
                    {
                        float w = yWeights[y * yTaps + k];
                        if (w != 0) sum += w * horizontal[((yStart[y] + k) * width + x) * 3 + c];
                    }
                    pixels[(y * width + x) * 3 + c] = (byte)Math.Clamp(MathF.Round(sum), 0, 255);
                }
        return new RgbImage(width, height, pixels);
    }

    /// <summary>Per output index: first input index and normalised triangle weights over a fixed number of taps.</summary>
    private static (int[] Start, float[] Weights, int Taps) Weights(int input, int output)
    {
        double scale = (double)input / output;
        double support = Math.Max(1.0, scale);
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[output];
        var weights = new float[output * taps];
        for (int i = 0; i < output; i++)
        {
            double center = (i + 0.5) * scale;
            int first = Math.Max(0, (int)Math.Floor(center - support));
            int last = Math.Min(input, (int)Math.Ceiling(center + support));
            first = Math.Min(first, Math.Max(0, input - taps));
            start[i] = first;
            double total = 0;
            var w = new double[taps];
            for (int k = 0; k < taps && first + k < last; k++)
            {
                double distance = Math.Abs(first + k + 0.5 - center) / support;
                w[k] = Math.Max(0, 1 - distance);
                total += w[k];
            }
            for (int k = 0; k < taps; k++) weights[i * taps + k] = total > 0 ? (float)(w[k] / total) : 0;
        }
        return (start, weights, taps);
    }

    /// <summary>RGB bytes to a [3, H, W] float tensor in [-1, 1] (x / 127.5 - 1), the image VAE's input range.</summary>
    public static float[] ToSignedUnitChw(RgbImage image)
    {
        int plane = image.Width * image.Height;
        var result = new float[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                result[c * plane + i] = image.Pixels[i * 3 + c] / 127.5f - 1f;
        return result;
    }
}
