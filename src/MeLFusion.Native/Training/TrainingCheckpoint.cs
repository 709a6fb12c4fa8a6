using System.Globalization;
using MeLFusion.Native.IO.Safetensors;
using MeLFusion.Native.Models;

namespace MeLFusion.Native.Training;

/// <summary>
/// The names and checks of a training checkpoint: a safetensors file holding the model's weights under their own
/// names, the optimizer state under <c>optimizer.*</c>, and in its metadata the model kind, step, seed and the
/// parameter layout (so a resume with another selection or model fails with a message instead of mixing states).
/// Randomness is counter-based (Philox keyed by seed and step), so the step and seed are the whole RNG state.
/// </summary>
public static class TrainingCheckpoint
{
    public const string FirstMoments = "optimizer.first_moment";
    public const string SecondMoments = "optimizer.second_moment";
    public const string Ema = "optimizer.ema";
    private const string KindKey = "training.kind", StepKey = "training.step", SeedKey = "training.seed",
        LayoutKey = "training.parameters", AccumulationKey = "training.accumulation_steps";

    internal static void Describe(SafetensorsWriter writer, Trainer trainer)
    {
        writer.AddMetadata(KindKey, trainer.Task.Kind);
        writer.AddMetadata(StepKey, trainer.Step.ToString(CultureInfo.InvariantCulture));
        writer.AddMetadata(SeedKey, trainer.Options.Seed.ToString(CultureInfo.InvariantCulture));
        writer.AddMetadata(AccumulationKey, trainer.Options.AccumulationSteps.ToString(CultureInfo.InvariantCulture));
        writer.AddMetadata(LayoutKey, Layout(trainer.Parameters));
    }

    /// <summary>Checks that <paramref name="file"/> is a checkpoint of this kind of run; returns its step.</summary>
    internal static long Check(SafetensorsFile file, string kind, TrainingOptions options)
    {
        string Get(string key) => file.Metadata.TryGetValue(key, out var v) ? v
            : throw new CheckpointException($"{file.Path}: not a training checkpoint (no '{key}' in its metadata)");
        if (Get(KindKey) != kind)
            throw new CheckpointException($"{file.Path}: a checkpoint of a '{Get(KindKey)}' run, not '{kind}'");
        if (Get(SeedKey) != options.Seed.ToString(CultureInfo.InvariantCulture) || Get(AccumulationKey) != options.AccumulationSteps.ToString(CultureInfo.InvariantCulture))
            throw new CheckpointException($"{file.Path}: saved with seed {Get(SeedKey)} and {Get(AccumulationKey)} accumulation steps; "
                + $"resuming with seed {options.Seed} and {options.AccumulationSteps} would not continue the same run");
        return long.TryParse(Get(StepKey), NumberStyles.None, CultureInfo.InvariantCulture, out long step) && step >= 0 ? step
            : throw new CheckpointException($"{file.Path}: invalid step '{Get(StepKey)}'");
    }

    internal static void Restore(SafetensorsFile file, Trainer trainer)
    {
        var store = trainer.Parameters;
        if (file.Metadata[LayoutKey] != Layout(store))
            throw new CheckpointException($"{file.Path}: its trained parameters differ from this run's selection ({store.Slots.Count} tensors)");
        int count = checked((int)store.Count);
        store.Upload(store.FirstMoments, file.ReadF32(FirstMoments, count), FirstMoments);
        store.Upload(store.SecondMoments, file.ReadF32(SecondMoments, count), SecondMoments);
        if (store.HasEma != file.Contains(Ema))
            throw new CheckpointException($"{file.Path}: {(file.Contains(Ema) ? "keeps" : "keeps no")} EMA weights, this run {(store.HasEma ? "does" : "does not")}");
        if (store.HasEma) store.Upload(store.Ema, file.ReadF32(Ema, count), Ema);
    }

    private static string Layout(ParameterStore store) =>
        string.Join(";", store.Slots.Select(s => $"{s.Name}:{string.Join("x", s.Dims)}@{s.Offset}"));
}
