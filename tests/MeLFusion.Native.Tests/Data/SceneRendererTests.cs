using MeLFusion.Native.Data.Synth;
using MeLFusion.Native.IO.Image;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Data;

public sealed class SceneRendererTests(ITestOutputHelper output)
{
    private const int Size = 128; // the smallest size keeps the test quick; the cues scale with the image

    private static MusicAttributes Item(Genre genre, Mood mood, int bpm) =>
        new(genre, mood, bpm, 0, Mode.Major, 4, Texture.Chords, null, GenreStyle.Of(genre).ChordInstruments[0], null, null);

    private static IEnumerable<RgbImage> Renders(Mood mood, int bpm, int count = 16) =>
        Enumerable.Range(0, count).Select(i => SceneRenderer.Render(Item((Genre)(i % 8), mood, bpm), new Random(i), Size));

    private static (double Luma, double Warmth, double Purple) Colour(RgbImage image)
    {
        double luma = 0, warmth = 0, purple = 0;
        int n = image.Width * image.Height;
        for (int i = 0; i < n; i++)
        {
            double r = image.Pixels[3 * i] / 255.0, g = image.Pixels[3 * i + 1] / 255.0, b = image.Pixels[3 * i + 2] / 255.0;
            luma += 0.299 * r + 0.587 * g + 0.114 * b;
            warmth += r - b;
            purple += (r + b) / 2 - g;
        }
        return (luma / n, warmth / n, purple / n);
    }

    /// <summary>
    /// Mean absolute horizontal luminance change across the sky (top half) after a 3x3 box blur that quiets the pixel
    /// noise: every crossing of a wave line adds to it, and a line crosses each row twice per cycle.
    /// </summary>
    private static double SkyRipple(RgbImage image)
    {
        int w = image.Width, rows = image.Height / 2;
        var luma = new double[image.Height, w];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < w; x++)
                luma[y, x] = 0.299 * image[y, x, 0] + 0.587 * image[y, x, 1] + 0.114 * image[y, x, 2];
        double Smooth(int y, int x)
        {
            double sum = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) sum += luma[Math.Clamp(y + dy, 0, image.Height - 1), Math.Clamp(x + dx, 0, w - 1)];
            return sum / 9;
        }
        double total = 0;
        for (int y = 0; y < rows; y++)
            for (int x = 1; x < w - 1; x++) total += Math.Abs(Smooth(y, x + 1) - Smooth(y, x - 1));
        return total / (rows * (w - 2));
    }

    [Fact]
    public void MoodSetsBrightnessAndHue()
    {
        var stats = Enum.GetValues<Mood>().ToDictionary(m => m, m =>
        {
            var colours = Renders(m, 100).Select(Colour).ToList();
            return (Luma: colours.Average(c => c.Luma), Warmth: colours.Average(c => c.Warmth), Purple: colours.Average(c => c.Purple));
        });
        foreach (var (mood, s) in stats) output.WriteLine($"{mood,-10} luma {s.Luma:0.000} warmth (R-B) {s.Warmth:+0.000;-0.000} purple {s.Purple:+0.000;-0.000}");

        double darkest = new[] { Mood.Happy, Mood.Calm, Mood.Energetic, Mood.Dreamy }.Min(m => stats[m].Luma);
        double brightestDark = new[] { Mood.Sad, Mood.Tense }.Max(m => stats[m].Luma);
        Assert.True(darkest > brightestDark + 0.2, $"bright moods {darkest:0.00} vs dark moods {brightestDark:0.00}");
        Assert.True(stats[Mood.Happy].Luma > stats[Mood.Energetic].Luma);
        Assert.True(stats[Mood.Happy].Warmth > 0.2 && stats[Mood.Energetic].Warmth > 0.2 && stats[Mood.Tense].Warmth > 0.05, "warm moods are red-yellow");
        Assert.True(stats[Mood.Sad].Warmth < -0.05 && stats[Mood.Calm].Warmth < -0.02, "sad and calm are cold");
        Assert.True(stats[Mood.Dreamy].Purple > 0.05, "dreamy is lavender-pink");
        Assert.True(stats[Mood.Calm].Purple < 0, "calm is green-teal");
    }

    [Fact]
    public void TempoSetsTheMotionFrequency()
    {
        foreach (var mood in new[] { Mood.Happy, Mood.Sad })
        {
            double slow = Renders(mood, 65, 12).Average(SkyRipple);
            double medium = Renders(mood, 110, 12).Average(SkyRipple);
            double fast = Renders(mood, 170, 12).Average(SkyRipple);
            output.WriteLine($"{mood}: sky ripple slow {slow:0.00}, medium {medium:0.00}, fast {fast:0.00}");
            Assert.True(slow < medium && medium < fast, $"{mood}: ripple must grow with tempo");
            Assert.True(fast > 1.7 * slow, $"{mood}: fast {fast:0.00} vs slow {slow:0.00}");
        }
    }

    [Fact]
    public void ImagesAreReproducibleYetVaried()
    {
        var a = Item(Genre.Folk, Mood.Calm, 90);
        var first = SceneRenderer.Render(a, new Random(1), 256);
        Assert.Equal((256, 256), (first.Width, first.Height));
        Assert.Equal(first.Pixels, SceneRenderer.Render(a, new Random(1), 256).Pixels);
        var other = SceneRenderer.Render(a, new Random(2), 256);
        int differing = first.Pixels.Zip(other.Pixels).Count(p => Math.Abs(p.First - p.Second) > 24);
        Assert.True(differing > first.Pixels.Length / 20, $"layouts of two seeds differ in only {differing} channel values");
    }

    [Fact]
    public void GenresDrawDifferentScenes()
    {
        // Same mood, tempo and seed: the scene is what changes, so the images must differ well beyond the noise.
        var images = Enum.GetValues<Genre>().Select(g => SceneRenderer.Render(Item(g, Mood.Happy, 100), new Random(7), Size)).ToList();
        for (int i = 0; i < images.Count; i++)
            for (int j = i + 1; j < images.Count; j++)
            {
                double diff = images[i].Pixels.Zip(images[j].Pixels).Average(p => Math.Abs(p.First - p.Second));
                Assert.True(diff > 8, $"{(Genre)i} and {(Genre)j} scenes differ by only {diff:0.0} per channel");
            }
    }

    [Fact]
    public void RejectsTinyImages() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SceneRenderer.Render(Item(Genre.Jazz, Mood.Happy, 100), new Random(0), 64));
}
