using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace MeLFusion.Native.Training.Data;

/// <summary>Whether examples need an image (<c>img_path</c>): MeLFusion conditions on one, a text-only backbone does not.</summary>
public enum ImageColumn
{
    /// <summary>Every example must name an existing image; <see cref="ManifestExample.ImagePath"/> is set.</summary>
    Required,

    /// <summary><c>img_path</c> is not read; <see cref="ManifestExample.ImagePath"/> is null.</summary>
    Ignored,
}

/// <summary>How <see cref="Manifest.Read"/> treats images and unusable lines.</summary>
public sealed record ManifestOptions
{
    public ImageColumn Images { get; init; } = ImageColumn.Required;
    public BadDataPolicy BadData { get; init; } = BadDataPolicy.Skip;
}

/// <summary>
/// One training example from a manifest line. Paths are absolute (relative ones resolved against the manifest's
/// folder). <see cref="Id"/> is the line's <c>id</c> when it has one, else a hash of its caption and paths as written,
/// so it is stable across runs and machines and can key cached features. <see cref="Attributes"/> is the line's
/// ground truth when it has an <c>attributes</c> object (synthetic datasets do), else null.
/// </summary>
public sealed record ManifestExample(string Id, string Caption, string AudioPath, string? ImagePath, string ManifestPath, int Line,
    ManifestAttributes? Attributes = null)
{
    /// <summary>"&lt;manifest&gt;:&lt;line&gt;", for messages.</summary>
    public string Where => $"{ManifestPath}:{Line}";

    /// <summary>
    /// The id and a hash of the caption and the resolved audio and image paths: names this example's content in a
    /// cache even where two manifests reuse an id.
    /// </summary>
    public string ContentKey
    {
        get
        {
            var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{Caption}\0{AudioPath}\0{ImagePath}"));
            return $"{Id}-{Convert.ToHexStringLower(hash, 0, 8)}";
        }
    }
}

/// <summary>
/// A MeLBench-style JSON-lines manifest (spec §1.5): one object per line with <c>captions</c> (text),
/// <c>location</c> (WAV path) and <c>img_path</c> (image path), optionally <c>id</c> and the synthetic datasets'
/// <c>attributes</c> (<see cref="ManifestAttributes"/>); other fields are ignored, blank lines skipped.
/// A line that is not a JSON object, lacks a field, names a missing file or repeats an id is skipped with a warning
/// or fails the read, by <see cref="ManifestOptions.BadData"/>. Files are only checked to exist here; their content is
/// checked when the <see cref="DataLoader"/> decodes them.
/// </summary>
public sealed class Manifest
{
    private Manifest(string path, IReadOnlyList<ManifestExample> examples, IReadOnlyList<string> warnings)
    {
        Path = path;
        Examples = examples;
        Warnings = warnings;
    }

    /// <summary>The manifest's path as given.</summary>
    public string Path { get; }

    /// <summary>Usable examples in file order.</summary>
    public IReadOnlyList<ManifestExample> Examples { get; }

    /// <summary>"&lt;manifest&gt;:&lt;line&gt;: &lt;problem&gt;" for every skipped line.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <exception cref="TrainingDataException">The manifest cannot be read, or a line is unusable and the policy is Fail.</exception>
    public static Manifest Read(string path, ManifestOptions? options = null)
    {
        options ??= new ManifestOptions();
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new TrainingDataException(path, 0, $"cannot read the manifest: {e.Message}", e);
        }
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        var log = new BadDataLog(options.BadData);
        var examples = new List<ManifestExample>();
        var lineOfId = new Dictionary<string, int>(StringComparer.Ordinal);

        ReadOnlyMemory<byte> rest = bytes;
        if (rest.Span.StartsWith("\uFEFF"u8)) rest = rest[3..];
        for (int line = 1; !rest.IsEmpty; line++)
        {
            int end = rest.Span.IndexOf((byte)'\n');
            var text = end < 0 ? rest : rest[..end];
            rest = end < 0 ? ReadOnlyMemory<byte>.Empty : rest[(end + 1)..];
            if (text.Span.Trim(" \t\r"u8).IsEmpty) continue;
            try
            {
                var example = ParseLine(text, path, line, folder, options.Images);
                if (!lineOfId.TryAdd(example.Id, line))
                    throw new TrainingDataException(path, line, $"id '{example.Id}' is already used on line {lineOfId[example.Id]}");
                examples.Add(example);
            }
            catch (TrainingDataException problem)
            {
                log.Report(problem);
            }
        }
        return new Manifest(path, examples, log.Warnings);
    }

    private static ManifestExample ParseLine(ReadOnlyMemory<byte> text, string manifest, int line, string folder, ImageColumn images)
    {
        TrainingDataException Bad(string problem, Exception? inner = null) => new(manifest, line, problem, inner);
        if (!Utf8.IsValid(text.Span)) throw Bad("the line is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw Bad($"not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad($"expected a JSON object, found {root.ValueKind}");

            string? Text(string field, bool required)
            {
                if (!root.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
                    return required ? throw Bad($"'{field}' is missing") : null;
                return value.ValueKind == JsonValueKind.String ? value.GetString()! : throw Bad($"'{field}' must be a string, found {value.ValueKind}");
            }

            string Resolve(string field, string written, string kind)
            {
                if (written.Length == 0 || written.Contains('\0')) throw Bad($"'{field}' is not a usable path: '{written}'");
                string resolved = System.IO.Path.GetFullPath(written, folder);
                return File.Exists(resolved) ? resolved : throw Bad($"{kind} file '{resolved}' does not exist");
            }

            string caption = Text("captions", required: true)!;
            string location = Text("location", required: true)!;
            // An ignored image column is not validated; a string in it still takes part in the derived id.
            string? imageWritten = images == ImageColumn.Required
                ? Text("img_path", required: true)
                : root.TryGetProperty("img_path", out var ignored) && ignored.ValueKind == JsonValueKind.String ? ignored.GetString() : null;
            string audio = Resolve("location", location, "audio");
            string? image = images == ImageColumn.Required ? Resolve("img_path", imageWritten!, "image") : null;
            string id = ReadId(root, Bad) ?? DerivedId(caption, location, imageWritten);
            var attributes = root.TryGetProperty("attributes", out var written) ? ManifestAttributes.Parse(written, problem => Bad(problem)) : null;
            return new ManifestExample(id, caption, audio, image, manifest, line, attributes);
        }
    }

    private static string? ReadId(JsonElement root, Func<string, Exception?, TrainingDataException> bad)
    {
        if (!root.TryGetProperty("id", out var id) || id.ValueKind == JsonValueKind.Null) return null;
        string? value = id.ValueKind switch
        {
            JsonValueKind.String => id.GetString(),
            JsonValueKind.Number when id.TryGetInt64(out long number) => number.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => null,
        };
        return string.IsNullOrEmpty(value) ? throw bad($"'id' must be a non-empty string or an integer, found {id}", null) : value;
    }

    /// <summary>16 hex digits of SHA-256 over the fields as written, so moving the dataset keeps the ids.</summary>
    private static string DerivedId(string caption, string location, string? imagePath)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{caption}\0{location}\0{imagePath}"));
        return Convert.ToHexStringLower(hash, 0, 8);
    }
}
