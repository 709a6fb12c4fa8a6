using MeLFusion.Native.IO.Image;

namespace MeLFusion.Native.Data.Synth;

/// <summary>A linear RGB colour with channels in [0, 1].</summary>
internal readonly record struct Rgb(float R, float G, float B)
{
    public static readonly Rgb Black = new(0, 0, 0), White = new(1, 1, 1);

    public static Rgb Mix(Rgb a, Rgb b, float t) => new(a.R + (b.R - a.R) * t, a.G + (b.G - a.G) * t, a.B + (b.B - a.B) * t);

    public float Luma => 0.299f * R + 0.587f * G + 0.114f * B;
}

/// <summary>
/// A small float RGB raster with the drawing primitives the scenes need: gradients, rectangles, soft-edged circles,
/// glows, polygons, thick lines, blur, noise. Coordinates are pixels, (0, 0) top left; everything clips to the canvas.
/// </summary>
internal sealed class Canvas
{
    private readonly float[] _pixels; // interleaved R, G, B

    public Canvas(int size)
    {
        Size = size;
        _pixels = new float[size * size * 3];
    }

    public int Size { get; }

    public Rgb this[int x, int y]
    {
        get
        {
            int i = (y * Size + x) * 3;
            return new Rgb(_pixels[i], _pixels[i + 1], _pixels[i + 2]);
        }
        set
        {
            int i = (y * Size + x) * 3;
            (_pixels[i], _pixels[i + 1], _pixels[i + 2]) = (value.R, value.G, value.B);
        }
    }

    private void Blend(int x, int y, Rgb color, float alpha)
    {
        if ((uint)x >= (uint)Size || (uint)y >= (uint)Size || alpha <= 0) return;
        this[x, y] = Rgb.Mix(this[x, y], color, Math.Min(alpha, 1));
    }

    public void VerticalGradient(Rgb top, Rgb bottom)
    {
        for (int y = 0; y < Size; y++)
        {
            var c = Rgb.Mix(top, bottom, y / (float)(Size - 1));
            for (int x = 0; x < Size; x++) this[x, y] = c;
        }
    }

    public void FillRect(float x0, float y0, float x1, float y1, Rgb color, float alpha = 1)
    {
        int left = Math.Max(0, (int)MathF.Round(x0)), right = Math.Min(Size, (int)MathF.Round(x1));
        int top = Math.Max(0, (int)MathF.Round(y0)), bottom = Math.Min(Size, (int)MathF.Round(y1));
        for (int y = top; y < bottom; y++)
            for (int x = left; x < right; x++) Blend(x, y, color, alpha);
    }

    /// <summary>Filled circle with a one-pixel anti-aliased edge.</summary>
    public void FillCircle(float cx, float cy, float radius, Rgb color, float alpha = 1)
    {
        ForBox(cx - radius - 1, cy - radius - 1, cx + radius + 1, cy + radius + 1, (x, y) =>
        {
            float d = MathF.Sqrt((x + 0.5f - cx) * (x + 0.5f - cx) + (y + 0.5f - cy) * (y + 0.5f - cy));
            Blend(x, y, color, alpha * Math.Clamp(radius + 0.5f - d, 0, 1));
        });
    }

    /// <summary>Additive radial light: strength at the centre, fading quadratically to nothing at the radius.</summary>
    public void Glow(float cx, float cy, float radius, Rgb color, float strength)
    {
        ForBox(cx - radius, cy - radius, cx + radius, cy + radius, (x, y) =>
        {
            float d = MathF.Sqrt((x + 0.5f - cx) * (x + 0.5f - cx) + (y + 0.5f - cy) * (y + 0.5f - cy)) / radius;
            if (d >= 1) return;
            float w = strength * (1 - d) * (1 - d);
            var p = this[x, y];
            this[x, y] = new Rgb(Math.Min(1, p.R + color.R * w), Math.Min(1, p.G + color.G * w), Math.Min(1, p.B + color.B * w));
        });
    }

    /// <summary>Filled polygon (even-odd rule, sampled at pixel centres).</summary>
    public void FillPolygon(ReadOnlySpan<(float X, float Y)> points, Rgb color, float alpha = 1)
    {
        var pts = points.ToArray();
        float minX = pts.Min(p => p.X), maxX = pts.Max(p => p.X), minY = pts.Min(p => p.Y), maxY = pts.Max(p => p.Y);
        ForBox(minX, minY, maxX, maxY, (x, y) =>
        {
            float px = x + 0.5f, py = y + 0.5f;
            bool inside = false;
            for (int i = 0, j = pts.Length - 1; i < pts.Length; j = i++)
                if ((pts[i].Y > py) != (pts[j].Y > py) && px < (pts[j].X - pts[i].X) * (py - pts[i].Y) / (pts[j].Y - pts[i].Y) + pts[i].X)
                    inside = !inside;
            if (inside) Blend(x, y, color, alpha);
        });
    }

    /// <summary>Thick line segment with round caps and a one-pixel soft edge.</summary>
    public void Line(float x0, float y0, float x1, float y1, float width, Rgb color, float alpha = 1)
    {
        float half = width / 2, dx = x1 - x0, dy = y1 - y0, lengthSquared = dx * dx + dy * dy;
        ForBox(Math.Min(x0, x1) - half - 1, Math.Min(y0, y1) - half - 1, Math.Max(x0, x1) + half + 1, Math.Max(y0, y1) + half + 1, (x, y) =>
        {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = lengthSquared == 0 ? 0 : Math.Clamp((px * dx + py * dy) / lengthSquared, 0, 1);
            float ex = px - t * dx, ey = py - t * dy;
            Blend(x, y, color, alpha * Math.Clamp(half + 0.5f - MathF.Sqrt(ex * ex + ey * ey), 0, 1));
        });
    }

    /// <summary>Fills every column from <paramref name="top"/>(x) down to the bottom edge: hills, dunes, water.</summary>
    public void FillBelow(Func<float, float> top, Rgb color, float alpha = 1)
    {
        for (int x = 0; x < Size; x++)
            for (int y = Math.Max(0, (int)MathF.Round(top(x + 0.5f))); y < Size; y++) Blend(x, y, color, alpha);
    }

    /// <summary>Applies a colour transform to every pixel, given its position.</summary>
    public void Map(Func<int, int, Rgb, Rgb> transform)
    {
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++) this[x, y] = transform(x, y, this[x, y]);
    }

    /// <summary>Separable box blur of the given radius (edges clamp).</summary>
    public void BoxBlur(int radius)
    {
        var source = (float[])_pixels.Clone();
        for (int pass = 0; pass < 2; pass++)
        {
            bool horizontal = pass == 0;
            for (int y = 0; y < Size; y++)
                for (int x = 0; x < Size; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        float sum = 0;
                        for (int k = -radius; k <= radius; k++)
                        {
                            int sx = horizontal ? Math.Clamp(x + k, 0, Size - 1) : x, sy = horizontal ? y : Math.Clamp(y + k, 0, Size - 1);
                            sum += source[(sy * Size + sx) * 3 + c];
                        }
                        _pixels[(y * Size + x) * 3 + c] = sum / (2 * radius + 1);
                    }
            _pixels.CopyTo(source, 0);
        }
    }

    /// <summary>Adds independent uniform noise in [-amplitude, amplitude] to every channel of every pixel.</summary>
    public void AddNoise(Random rng, float amplitude)
    {
        for (int i = 0; i < _pixels.Length; i++) _pixels[i] += (float)(rng.NextDouble() * 2 - 1) * amplitude;
    }

    public RgbImage ToImage()
    {
        var bytes = new byte[_pixels.Length];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)Math.Clamp((int)MathF.Round(_pixels[i] * 255), 0, 255);
        return new RgbImage(Size, Size, bytes);
    }

    private void ForBox(float x0, float y0, float x1, float y1, Action<int, int> visit)
    {
        int left = Math.Max(0, (int)MathF.Floor(x0)), right = Math.Min(Size - 1, (int)MathF.Ceiling(x1));
        int top = Math.Max(0, (int)MathF.Floor(y0)), bottom = Math.Min(Size - 1, (int)MathF.Ceiling(y1));
        for (int y = top; y <= bottom; y++)
            for (int x = left; x <= right; x++) visit(x, y);
    }
}
