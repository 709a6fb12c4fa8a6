using System.Text.Json;
using MeLFusion.Native.IO.Image;

namespace MeLFusion.Native.Tests.Training.Data;

/// <summary>
/// A small MeLBench-style dataset in a temporary folder, laid out as the synthesizer writes it: train.jsonl
/// with relative paths to audio/NNN.wav (16 kHz mono, 0.05 s of seeded noise, one per example) and
/// images/NNN.png (6×4 pixels, coloured by index).
/// </summary>
internal sealed class TestDataset : IDisposable
{
    public const int SampleRate = 16000, AudioFrames = 800;

    public TestDataset(int count)
    {
        Root = Directory.CreateTempSubdirectory("melfusion-data-").FullName;
        Directory.CreateDirectory(Path.Combine(Root, "audio"));
        Directory.CreateDirectory(Path.Combine(Root, "images"));
        Lines = [];
        for (int i = 0; i < count; i++)
        {
            string id = i.ToString("D3");
            var random = new Random(i);
            TestWav.Write(Path.Combine(Root, "audio", id + ".wav"), SampleRate, WavEncoding.Pcm16,
                Enumerable.Range(0, AudioFrames).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray());
            var pixels = Enumerable.Range(0, 6 * 4 * 3).Select(p => (byte)(i * 7 + p)).ToArray();
            ImageFile.WritePng(Path.Combine(Root, "images", id + ".png"), new RgbImage(6, 4, pixels));
            Lines.Add(Line($"caption {i}", $"audio/{id}.wav", $"images/{id}.png", id));
        }
    }

    public string Root { get; }

    /// <summary>Manifest lines, written by <see cref="WriteManifest"/>; tests may edit them first.</summary>
    public List<string> Lines { get; }

    public string AudioPath(int i) => Path.Combine(Root, "audio", i.ToString("D3") + ".wav");
    public string ImagePath(int i) => Path.Combine(Root, "images", i.ToString("D3") + ".png");

    /// <summary>One JSON line with MeLBench's fields; null fields are left out.</summary>
    public static string Line(string? caption, string? location, string? image, string? id = null)
    {
        var fields = new Dictionary<string, string>();
        if (caption is not null) fields["captions"] = caption;
        if (location is not null) fields["location"] = location;
        if (image is not null) fields["img_path"] = image;
        if (id is not null) fields["id"] = id;
        return JsonSerializer.Serialize(fields);
    }

    /// <summary>Writes the lines to &lt;root&gt;/&lt;name&gt; (so relative paths resolve against the dataset root) and returns its path.</summary>
    public string WriteManifest(string name = "train.jsonl")
    {
        string path = Path.Combine(Root, name);
        File.WriteAllText(path, string.Join("\n", Lines) + "\n");
        return path;
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}
