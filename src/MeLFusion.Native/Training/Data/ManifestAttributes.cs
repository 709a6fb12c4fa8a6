using System.Text.Json;

namespace MeLFusion.Native.Training.Data;

/// <summary>The instrument of one part: its General MIDI program (for drums, the GM kit number) and caption name.</summary>
public sealed record ManifestInstrument(int Program, string? Name);

/// <summary>
/// The ground truth of a manifest line's <c>attributes</c> object, as the synthetic dataset generator writes it
/// (<c>Data/Synth/README.md</c>): every field is optional and kept as written (names, not parsed values), so a
/// manifest from elsewhere with fewer or other attributes still reads. Fields not listed here are ignored.
/// </summary>
public sealed record ManifestAttributes
{
    public string? Genre { get; init; }
    public string? Mood { get; init; }
    public int? TempoBpm { get; init; }
    public string? TempoFeel { get; init; }
    public string? Key { get; init; }
    public string? Mode { get; init; }
    public string? TimeSignature { get; init; }

    /// <summary>The parts that play ("melody", "chords", "bass", "percussion").</summary>
    public IReadOnlyList<string> Texture { get; init; } = [];

    /// <summary>The instrument of each part, keyed by role ("melody", "chords", "bass", "drums").</summary>
    public IReadOnlyDictionary<string, ManifestInstrument> Instruments { get; init; } = new Dictionary<string, ManifestInstrument>();

    /// <summary>Value equality, the collections included (element by element; instruments by role).</summary>
    public bool Equals(ManifestAttributes? other) =>
        other is not null && (Genre, Mood, TempoBpm, TempoFeel, Key, Mode, TimeSignature) == (other.Genre, other.Mood, other.TempoBpm, other.TempoFeel, other.Key, other.Mode, other.TimeSignature)
        && Texture.SequenceEqual(other.Texture)
        && Instruments.Count == other.Instruments.Count && Instruments.All(p => other.Instruments.TryGetValue(p.Key, out var i) && i == p.Value);

    public override int GetHashCode() => HashCode.Combine(Genre, Mood, TempoBpm, TempoFeel, Key, Mode, TimeSignature, Texture.Count);

    /// <summary>
    /// Reads an <c>attributes</c> value: null for JSON null, else an object whose known fields must have their JSON
    /// types; <paramref name="bad"/> makes the exception for a problem (a message naming the field).
    /// </summary>
    public static ManifestAttributes? Parse(JsonElement element, Func<string, Exception> bad)
    {
        if (element.ValueKind == JsonValueKind.Null) return null;
        if (element.ValueKind != JsonValueKind.Object) throw bad($"'attributes' must be an object, found {element.ValueKind}");

        string? Text(string field) => Field(element, field, JsonValueKind.String, bad)?.GetString();
        int? Integer(JsonElement parent, string field, string path)
        {
            var value = Field(parent, field, JsonValueKind.Number, bad, path);
            if (value is null) return null;
            return value.Value.TryGetInt32(out int number) ? number : throw bad($"'{path}.{field}' must be an integer, found {value}");
        }

        var texture = new List<string>();
        if (Field(element, "texture", JsonValueKind.Array, bad) is { } parts)
            foreach (var part in parts.EnumerateArray())
                texture.Add(part.ValueKind == JsonValueKind.String ? part.GetString()! : throw bad($"'attributes.texture' must hold strings, found {part.ValueKind}"));

        var instruments = new Dictionary<string, ManifestInstrument>(StringComparer.Ordinal);
        if (Field(element, "instruments", JsonValueKind.Object, bad) is { } roles)
            foreach (var role in roles.EnumerateObject())
            {
                string path = $"attributes.instruments.{role.Name}";
                if (role.Value.ValueKind != JsonValueKind.Object) throw bad($"'{path}' must be an object, found {role.Value.ValueKind}");
                // Melodic parts name a GM program, drums a GM kit.
                int program = Integer(role.Value, "program", path) ?? Integer(role.Value, "kit", path)
                    ?? throw bad($"'{path}' has neither 'program' nor 'kit'");
                instruments[role.Name] = new ManifestInstrument(program, Field(role.Value, "name", JsonValueKind.String, bad, path)?.GetString());
            }

        return new ManifestAttributes
        {
            Genre = Text("genre"),
            Mood = Text("mood"),
            TempoBpm = Integer(element, "tempo_bpm", "attributes"),
            TempoFeel = Text("tempo_feel"),
            Key = Text("key"),
            Mode = Text("mode"),
            TimeSignature = Text("time_signature"),
            Texture = texture,
            Instruments = instruments,
        };
    }

    /// <summary>The field's value when present and not null; a value of another JSON type is a problem.</summary>
    private static JsonElement? Field(JsonElement parent, string name, JsonValueKind kind, Func<string, Exception> bad, string path = "attributes")
    {
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind == kind ? value : throw bad($"'{path}.{name}' must be {Describe(kind)}, found {value.ValueKind}");
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };
}
