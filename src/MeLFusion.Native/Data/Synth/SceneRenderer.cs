using MeLFusion.Native.IO.Image;

namespace MeLFusion.Native.Data.Synth;

/// <summary>
/// Draws the image of an item. Each attribute has one strong, consistent visual channel, with random layout and
/// pixel noise on top:
/// <list type="bullet">
/// <item>mood → palette and brightness (warm bright, cold dark, pastel, blood red, ...) plus a finishing touch
/// (soft blur and sparkles when dreamy, vignette when tense, desaturation when sad, extra saturation when energetic);</item>
/// <item>tempo → motion: the spatial frequency and the number of the wave lines across the sky grow with BPM, so
/// do the particles, and diagonal speed streaks appear above 110 BPM;</item>
/// <item>genre → the scene: lounge lamps and a keyboard (jazz), stage with beams and amps (rock), columned hall
/// (classical), laser club with a grid floor (electronic), pine forest (folk), sea at sunset (ambient), city skyline
/// (hip hop), desert with cacti (latin).</item>
/// </list>
/// </summary>
public static class SceneRenderer
{
    public const int DefaultSize = 256, MinSize = 128;

    private sealed record Palette(Rgb SkyTop, Rgb SkyBottom, Rgb Shadow, Rgb Light);

    private static Palette MoodPalette(Mood mood) => mood switch
    {
        Mood.Happy => new(new(1.00f, 0.78f, 0.35f), new(1.00f, 0.93f, 0.62f), new(0.55f, 0.32f, 0.15f), new(1.00f, 0.97f, 0.60f)),
        Mood.Sad => new(new(0.07f, 0.09f, 0.20f), new(0.24f, 0.29f, 0.42f), new(0.04f, 0.05f, 0.10f), new(0.50f, 0.60f, 0.80f)),
        Mood.Calm => new(new(0.55f, 0.80f, 0.82f), new(0.78f, 0.92f, 0.80f), new(0.22f, 0.44f, 0.42f), new(0.92f, 1.00f, 0.95f)),
        Mood.Energetic => new(new(1.00f, 0.28f, 0.42f), new(1.00f, 0.66f, 0.15f), new(0.30f, 0.02f, 0.18f), new(1.00f, 1.00f, 0.30f)),
        Mood.Tense => new(new(0.06f, 0.00f, 0.01f), new(0.42f, 0.05f, 0.04f), new(0.02f, 0.02f, 0.02f), new(0.90f, 0.22f, 0.10f)),
        _ => new(new(0.58f, 0.48f, 0.82f), new(0.96f, 0.72f, 0.86f), new(0.42f, 0.32f, 0.56f), new(1.00f, 0.92f, 1.00f)), // dreamy
    };

    public static RgbImage Render(MusicAttributes attributes, Random rng, int size = DefaultSize)
    {
        if (size < MinSize) throw new ArgumentOutOfRangeException(nameof(size), size, $"images are at least {MinSize} pixels square");
        var palette = Jitter(MoodPalette(attributes.Mood), rng);
        var canvas = new Canvas(size);
        float horizon = size * Uniform(rng, 0.58f, 0.70f);
        canvas.VerticalGradient(palette.SkyTop, palette.SkyBottom);
        DrawWaves(canvas, rng, palette, attributes.TempoBpm, horizon);
        var scene = new Scene(canvas, rng, palette, horizon);
        switch (attributes.Genre)
        {
            case Genre.Jazz: scene.Lounge(); break;
            case Genre.Rock: scene.Stage(); break;
            case Genre.Classical: scene.ConcertHall(); break;
            case Genre.Electronic: scene.Club(); break;
            case Genre.Folk: scene.Forest(); break;
            case Genre.Ambient: scene.Sea(); break;
            case Genre.HipHop: scene.Skyline(); break;
            default: scene.Desert(); break;
        }
        DrawMotion(canvas, rng, palette, attributes.TempoBpm, horizon);
        FinishMood(canvas, rng, palette, attributes.Mood);
        canvas.AddNoise(rng, 0.03f);
        return canvas.ToImage();
    }

    private static float Uniform(Random rng, float low, float high) => low + (float)rng.NextDouble() * (high - low);

    private static Palette Jitter(Palette p, Random rng)
    {
        Rgb Shift(Rgb c) => new(
            Math.Clamp(c.R + Uniform(rng, -0.04f, 0.04f), 0, 1), Math.Clamp(c.G + Uniform(rng, -0.04f, 0.04f), 0, 1), Math.Clamp(c.B + Uniform(rng, -0.04f, 0.04f), 0, 1));
        return new Palette(Shift(p.SkyTop), Shift(p.SkyBottom), Shift(p.Shadow), Shift(p.Light));
    }

    /// <summary>
    /// Wave lines across the sky: about BPM/15 cycles across the width (4 at 60 BPM, 12 at 180) at a constant
    /// amplitude, and more lines the faster the music (2 or 3 at 60 BPM, 6 or 7 at 180), so tempo reads as both the
    /// lines' spatial frequency and their number.
    /// </summary>
    private static void DrawWaves(Canvas canvas, Random rng, Palette palette, int bpm, float horizon)
    {
        int s = canvas.Size;
        int count = 2 + (bpm - MusicAttributes.MinTempo) / 30 + rng.Next(2);
        // Light lines on a dark sky, darker ones on a bright sky: the lines must stand out from the noise.
        var color = palette.SkyTop.Luma < 0.45f ? palette.Light : Rgb.Mix(palette.Shadow, palette.SkyTop, 0.45f);
        float top = 0.08f * s, bottom = horizon - 0.08f * s;
        for (int i = 0; i < count; i++)
        {
            float cycles = bpm / 15f * Uniform(rng, 0.9f, 1.1f);
            float amplitude = s * Uniform(rng, 0.025f, 0.035f), phase = Uniform(rng, 0, MathF.Tau);
            float y0 = top + (bottom - top) * (i + Uniform(rng, 0.2f, 0.8f)) / count;
            float previousY = y0 + amplitude * MathF.Sin(phase);
            for (int x = 1; x <= s; x++)
            {
                float y = y0 + amplitude * MathF.Sin(MathF.Tau * cycles * x / s + phase);
                canvas.Line(x - 1, previousY, x, y, s / 96f, color, 0.75f);
                previousY = y;
            }
        }
    }

    /// <summary>Particles (about BPM/10) everywhere, and diagonal speed streaks whose number grows above 110 BPM.</summary>
    private static void DrawMotion(Canvas canvas, Random rng, Palette palette, int bpm, float horizon)
    {
        int s = canvas.Size;
        int particles = bpm / 10 + rng.Next(-1, 2);
        for (int i = 0; i < particles; i++)
            canvas.FillCircle(Uniform(rng, 0, s), Uniform(rng, 0, s), s * Uniform(rng, 0.006f, 0.012f), palette.Light, 0.8f);
        int streaks = Math.Max(0, (bpm - 110) / 5);
        for (int i = 0; i < streaks; i++)
        {
            float x = Uniform(rng, -0.1f, 1f) * s, y = Uniform(rng, 0.02f, 0.95f) * horizon;
            float length = s * Uniform(rng, 0.12f, 0.25f), angle = Uniform(rng, -0.35f, -0.15f);
            canvas.Line(x, y, x + length * MathF.Cos(angle), y + length * MathF.Sin(angle), s / 170f, palette.Light, 0.55f);
        }
    }

    private static void FinishMood(Canvas canvas, Random rng, Palette palette, Mood mood)
    {
        int s = canvas.Size;
        switch (mood)
        {
            case Mood.Dreamy:
                canvas.BoxBlur(Math.Max(1, s / 128));
                canvas.Map((_, _, c) => Rgb.Mix(c, new Rgb(1f, 0.9f, 1f), 0.12f));
                for (int i = rng.Next(8, 16); i > 0; i--)
                {
                    float x = Uniform(rng, 0, s), y = Uniform(rng, 0, s), r = s * Uniform(rng, 0.01f, 0.025f);
                    canvas.Line(x - r, y, x + r, y, 1, palette.Light, 0.8f);
                    canvas.Line(x, y - r, x, y + r, 1, palette.Light, 0.8f);
                }
                break;
            case Mood.Tense:
                canvas.Map((x, y, c) =>
                {
                    float dx = (x + 0.5f) / s - 0.5f, dy = (y + 0.5f) / s - 0.5f;
                    float keep = Math.Max(0.2f, 1 - 1.6f * (dx * dx + dy * dy));
                    return new Rgb(c.R * keep, c.G * keep, c.B * keep);
                });
                break;
            case Mood.Sad:
                canvas.Map((_, _, c) => Rgb.Mix(c, new Rgb(c.Luma, c.Luma, c.Luma), 0.3f));
                break;
            case Mood.Energetic:
                canvas.Map((_, _, c) =>
                {
                    float l = c.Luma;
                    return new Rgb(l + (c.R - l) * 1.25f, l + (c.G - l) * 1.25f, l + (c.B - l) * 1.25f);
                });
                break;
        }
    }

    /// <summary>The eight genre scenes, drawn in the palette's shadow and light colours over the sky.</summary>
    private sealed class Scene(Canvas canvas, Random rng, Palette palette, float horizon)
    {
        private readonly int _s = canvas.Size;

        private float U(float low, float high) => Uniform(rng, low, high);

        private Rgb Ground(float towardSky) => Rgb.Mix(palette.Shadow, palette.SkyBottom, towardSky);

        public void Lounge()
        {
            canvas.FillRect(0, horizon, _s, _s, Ground(0.25f));
            int lamps = rng.Next(3, 6);
            for (int i = 0; i < lamps; i++)
            {
                float x = (i + 0.5f + U(-0.25f, 0.25f)) * _s / lamps, y = _s * U(0.15f, 0.32f);
                canvas.Line(x, 0, x, y, 1.2f, palette.Shadow);
                canvas.Glow(x, y + 0.03f * _s, 0.13f * _s, palette.Light, 0.6f);
                canvas.FillPolygon([(x - 0.045f * _s, y + 0.03f * _s), (x + 0.045f * _s, y + 0.03f * _s), (x, y - 0.015f * _s)], palette.Shadow);
            }
            float micX = _s * U(0.15f, 0.85f), micTop = horizon - _s * U(0.18f, 0.28f);
            canvas.Line(micX, horizon + 0.04f * _s, micX, micTop, 2, palette.Shadow);
            canvas.FillCircle(micX, micTop, 0.022f * _s, palette.Shadow);
            float keysTop = _s * U(0.80f, 0.86f), keysBottom = keysTop + 0.10f * _s, keyWidth = _s / 22f;
            canvas.FillRect(0, keysTop, _s, keysBottom, Rgb.Mix(palette.Light, Rgb.White, 0.4f));
            for (int k = 0; k * keyWidth < _s; k++)
            {
                canvas.Line(k * keyWidth, keysTop, k * keyWidth, keysBottom, 1, palette.Shadow);
                if (k % 7 is not (2 or 6))
                    canvas.FillRect((k + 0.65f) * keyWidth, keysTop, (k + 1.35f) * keyWidth, keysTop + 0.06f * _s, palette.Shadow);
            }
        }

        public void Stage()
        {
            int beams = rng.Next(2, 5);
            for (int i = 0; i < beams; i++)
            {
                float x = _s * U(0.1f, 0.9f), spread = _s * U(0.12f, 0.22f), lean = _s * U(-0.15f, 0.15f);
                canvas.FillPolygon([(x - 3, 0), (x + 3, 0), (x + lean + spread, horizon + 0.1f * _s), (x + lean - spread, horizon + 0.1f * _s)], palette.Light, 0.3f);
            }
            canvas.FillRect(0, horizon, _s, _s, Ground(0.2f));
            int amps = rng.Next(2, 5);
            for (int i = 0; i < amps; i++)
            {
                float w = _s * U(0.12f, 0.18f), h = _s * U(0.18f, 0.28f), x = _s * U(0, 0.85f), bottom = horizon + 0.05f * _s;
                canvas.FillRect(x, bottom - h, x + w, bottom, palette.Shadow);
                canvas.FillRect(x + 0.1f * w, bottom - 0.8f * h, x + 0.9f * w, bottom - 0.1f * h, Rgb.Mix(palette.Shadow, palette.Light, 0.2f));
                canvas.FillCircle(x + 0.2f * w, bottom - 0.9f * h, 0.012f * _s, palette.Light);
            }
            int heads = rng.Next(10, 17);
            for (int i = 0; i < heads; i++)
            {
                float x = _s * (i + U(0, 1)) / heads, y = _s * U(0.93f, 0.99f), r = _s * U(0.035f, 0.055f);
                canvas.FillCircle(x, y, r, Rgb.Mix(palette.Shadow, Rgb.Black, 0.3f));
                canvas.FillCircle(x, y + 1.8f * r, 1.7f * r, Rgb.Mix(palette.Shadow, Rgb.Black, 0.3f));
            }
        }

        public void ConcertHall()
        {
            var stone = Rgb.Mix(palette.Light, palette.SkyBottom, 0.5f);
            float beamTop = _s * U(0.14f, 0.2f), beamBottom = beamTop + 0.06f * _s;
            canvas.FillPolygon([(0.1f * _s, beamTop), (0.9f * _s, beamTop), (0.5f * _s, beamTop - U(0.08f, 0.12f) * _s)], Rgb.Mix(stone, palette.Shadow, 0.3f));
            canvas.FillRect(0, beamTop, _s, beamBottom, Rgb.Mix(stone, palette.Shadow, 0.3f));
            int columns = rng.Next(4, 7);
            float width = _s * U(0.05f, 0.07f);
            for (int i = 0; i < columns; i++)
            {
                float x = _s * (i + 0.5f) / columns - width / 2;
                canvas.FillRect(x, beamBottom, x + width, horizon, stone);
                canvas.FillRect(x - 0.2f * width, beamBottom, x + 1.2f * width, beamBottom + 0.025f * _s, Rgb.Mix(stone, palette.Shadow, 0.2f));
                canvas.Line(x + 0.5f, beamBottom, x + 0.5f, horizon, 1, palette.Shadow, 0.4f);
                canvas.Line(x + width - 0.5f, beamBottom, x + width - 0.5f, horizon, 1, palette.Shadow, 0.4f);
            }
            float cx = _s * U(0.35f, 0.65f), cy = _s * U(0.3f, 0.4f);
            canvas.Glow(cx, cy, 0.16f * _s, palette.Light, 0.7f);
            for (int k = 0; k < 8; k++)
                canvas.FillCircle(cx + 0.06f * _s * MathF.Cos(k * MathF.Tau / 8), cy + 0.02f * _s * MathF.Sin(k * MathF.Tau / 8), 0.01f * _s, palette.Light);
            canvas.FillRect(0, horizon, _s, _s, Ground(0.45f));
            for (float y = horizon + 0.03f * _s, gap = 0.03f * _s; y < _s; y += gap, gap *= 1.35f)
                canvas.Line(0, y, _s, y, 1, palette.Shadow, 0.4f);
        }

        public void Club()
        {
            canvas.FillRect(0, horizon, _s, _s, Rgb.Mix(palette.Shadow, Rgb.Black, 0.3f));
            float vx = _s * U(0.3f, 0.7f);
            for (int i = -6; i <= 6; i++)
                canvas.Line(vx, horizon, vx + i * 0.22f * _s, _s, 1.2f, palette.Light, 0.6f);
            for (float t = 0.05f; t < 1; t += 0.16f)
                canvas.Line(0, horizon + (_s - horizon) * t * t * 1.2f, _s, horizon + (_s - horizon) * t * t * 1.2f, 1.2f, palette.Light, 0.6f);
            int lasers = rng.Next(5, 9);
            float ox = _s * U(0.1f, 0.9f);
            var second = Rgb.Mix(palette.Light, palette.SkyTop, 0.5f);
            for (int i = 0; i < lasers; i++)
                canvas.Line(ox, 0, _s * U(-0.2f, 1.2f), horizon * U(0.8f, 1f), 1.2f, i % 2 == 0 ? palette.Light : second, 0.7f);
            float bx = _s * U(0.3f, 0.7f), by = 0.14f * _s, br = 0.06f * _s;
            canvas.FillCircle(bx, by, br, Rgb.Mix(palette.Light, palette.Shadow, 0.5f));
            for (int k = 0; k < 14; k++)
                canvas.FillCircle(bx + br * 0.7f * MathF.Cos(k * 2.4f), by + br * 0.7f * MathF.Sin(k * 2.4f), 0.008f * _s, palette.Light);
            canvas.Glow(bx, by, 0.15f * _s, palette.Light, 0.35f);
        }

        public void Forest()
        {
            float sx = _s * U(0.15f, 0.85f), sy = _s * U(0.12f, 0.3f);
            canvas.Glow(sx, sy, 0.2f * _s, palette.Light, 0.5f);
            canvas.FillCircle(sx, sy, 0.07f * _s, Rgb.Mix(palette.Light, Rgb.White, 0.3f));
            float f1 = U(0.6f, 1.2f), p1 = U(0, MathF.Tau), f2 = U(0.8f, 1.6f), p2 = U(0, MathF.Tau);
            float Far(float x) => horizon - 0.1f * _s - 0.06f * _s * MathF.Sin(MathF.Tau * f1 * x / _s + p1);
            float Near(float x) => horizon + 0.02f * _s - 0.05f * _s * MathF.Sin(MathF.Tau * f2 * x / _s + p2);
            canvas.FillBelow(Far, Ground(0.5f));
            canvas.FillBelow(Near, Ground(0.2f));
            int trees = rng.Next(6, 13);
            var green = Rgb.Mix(palette.Shadow, Rgb.Black, 0.2f);
            for (int i = 0; i < trees; i++)
            {
                float x = _s * U(0, 1), baseY = Near(x) + _s * U(0, 0.15f), h = _s * U(0.15f, 0.32f), w = h * U(0.35f, 0.5f);
                canvas.FillRect(x - 0.04f * w, baseY - 0.2f * h, x + 0.04f * w, baseY, green);
                for (int tier = 0; tier < 3; tier++)
                {
                    float bottom = baseY - 0.15f * h - tier * 0.25f * h, width = w * (1 - 0.25f * tier);
                    canvas.FillPolygon([(x - width / 2, bottom), (x + width / 2, bottom), (x, bottom - 0.45f * h)], green);
                }
            }
        }

        public void Sea()
        {
            float sx = _s * U(0.3f, 0.7f), r = _s * U(0.1f, 0.14f), sy = horizon - _s * U(0.02f, 0.18f);
            canvas.Glow(sx, sy, 2.5f * r, palette.Light, 0.5f);
            canvas.FillCircle(sx, sy, r, Rgb.Mix(palette.Light, Rgb.White, 0.25f));
            var sea = Ground(0.35f);
            canvas.FillRect(0, horizon, _s, _s, sea);
            for (float y = horizon + 2; y < _s; y += 3)
            {
                float half = r * (1.1f - 0.6f * (y - horizon) / (_s - horizon)) * U(0.5f, 1.1f);
                canvas.Line(sx - half, y, sx + half, y, 1.2f, palette.Light, 0.45f);
            }
            for (int i = rng.Next(4, 8); i > 0; i--)
            {
                float y = U(horizon + 4, _s), x = _s * U(0, 1), len = _s * U(0.1f, 0.3f);
                canvas.Line(x, y, x + len, y, 1, Rgb.Mix(palette.Light, sea, 0.5f), 0.4f);
            }
        }

        public void Skyline()
        {
            canvas.FillCircle(_s * U(0.1f, 0.9f), _s * U(0.08f, 0.2f), 0.045f * _s, Rgb.Mix(palette.Light, Rgb.White, 0.4f));
            var building = Rgb.Mix(palette.Shadow, Rgb.Black, 0.1f);
            for (float x = -_s * U(0, 0.05f); x < _s;)
            {
                float w = _s * U(0.07f, 0.16f), h = _s * U(0.15f, 0.45f), top = horizon - h;
                canvas.FillRect(x, top, x + w - 1, _s, building);
                float cell = 0.04f * _s;
                for (float wy = top + 0.02f * _s; wy + cell < horizon; wy += cell)
                    for (float wx = x + 0.015f * _s; wx + 0.6f * cell < x + w - 1; wx += 0.7f * cell)
                        if (rng.NextDouble() < 0.45) canvas.FillRect(wx, wy, wx + 0.4f * cell, wy + 0.5f * cell, palette.Light, 0.9f);
                x += w;
            }
            canvas.FillRect(0, horizon, _s, _s, Rgb.Mix(palette.Shadow, Rgb.Black, 0.4f));
            float lane = horizon + (_s - horizon) * 0.55f;
            for (float x = _s * U(0, 0.1f); x < _s; x += 0.12f * _s)
                canvas.Line(x, lane, x + 0.06f * _s, lane, 2, palette.Light, 0.7f);
            float lx = _s * U(0.1f, 0.9f), ly = horizon - 0.2f * _s;
            canvas.Line(lx, horizon + 0.05f * _s, lx, ly, 2, building);
            canvas.Glow(lx, ly, 0.1f * _s, palette.Light, 0.7f);
        }

        public void Desert()
        {
            float sx = _s * U(0.2f, 0.8f), sy = _s * U(0.2f, 0.4f), r = _s * U(0.09f, 0.13f);
            canvas.Glow(sx, sy, 2.2f * r, palette.Light, 0.5f);
            canvas.FillCircle(sx, sy, r, Rgb.Mix(palette.Light, Rgb.White, 0.2f));
            for (int layer = 0; layer < 3; layer++)
            {
                float baseY = horizon + layer * 0.09f * _s, amp = _s * U(0.03f, 0.06f), freq = U(0.5f, 1.5f), phase = U(0, MathF.Tau);
                canvas.FillBelow(x => baseY - amp * (0.5f + 0.5f * MathF.Sin(MathF.Tau * freq * x / _s + phase)),
                    Rgb.Mix(palette.Light, palette.Shadow, 0.4f + 0.15f * layer));
            }
            int cacti = rng.Next(2, 5);
            for (int i = 0; i < cacti; i++)
            {
                float x = _s * U(0.05f, 0.95f), bottom = horizon + _s * U(0.1f, 0.3f), h = _s * U(0.15f, 0.3f), w = h * 0.14f;
                canvas.FillRect(x - w / 2, bottom - h, x + w / 2, bottom, palette.Shadow);
                canvas.FillCircle(x, bottom - h, w / 2, palette.Shadow);
                foreach (int side in new[] { -1, 1 })
                {
                    float armY = bottom - h * U(0.35f, 0.6f), armX = x + side * w * 1.4f;
                    canvas.FillRect(Math.Min(x, armX), armY - w * 0.35f, Math.Max(x, armX), armY + w * 0.35f, palette.Shadow);
                    canvas.FillRect(armX - w * 0.35f, armY - h * 0.25f, armX + w * 0.35f, armY + w * 0.35f, palette.Shadow);
                    canvas.FillCircle(armX, armY - h * 0.25f, w * 0.35f, palette.Shadow);
                }
            }
        }
    }
}
