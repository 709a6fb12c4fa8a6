using System.Text.Json;
using System.Text.Json.Serialization;

namespace MeLFusion.Native.Training.Data;

/// <summary>
/// Where a <see cref="DataLoader"/> stands: the next example is position <see cref="Index"/> of epoch
/// <see cref="Epoch"/>'s order. Saved with a checkpoint, it resumes the run exactly where it stopped. The seed and
/// example count are kept so that resuming with a different dataset or seed is refused rather than silently reshuffled.
/// </summary>
public sealed record LoaderState(ulong Seed, int ExampleCount, int Epoch, int Index)
{
    public string ToJson() => JsonSerializer.Serialize(this, LoaderStateJson.Default.LoaderState);

    /// <exception cref="InvalidDataException">Not a loader state, or its numbers are impossible.</exception>
    public static LoaderState FromJson(string json)
    {
        LoaderState? state;
        try
        {
            state = JsonSerializer.Deserialize(json, LoaderStateJson.Default.LoaderState);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"not a data loader state: {e.Message}", e);
        }
        if (state is null || state.ExampleCount < 1 || state.Epoch < 0 || state.Index < 0 || state.Index > state.ExampleCount)
            throw new InvalidDataException($"impossible data loader state: {json}");
        return state;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(LoaderState))]
internal sealed partial class LoaderStateJson : JsonSerializerContext;
