namespace MeLFusion.Native.Pipelines.Schedulers;

/// <summary>
/// How N inference timesteps are picked from the T training timesteps (diffusers' timestep_spacing; Table 2 of
/// "Common Diffusion Noise Schedules and Sample Steps are Flawed").
/// </summary>
public enum TimestepSpacing
{
    /// <summary>Multiples of T // N (+ steps_offset): SD 2.1's scheduler config, 50 steps → 981, 961, …, 1.</summary>
    Leading,

    /// <summary>Evenly spaced over [0, T − 1], rounded half to even (numpy's linspace().round()).</summary>
    Linspace,

    /// <summary>Evenly spaced ending at T − 1: round(T − i·T/N) − 1.</summary>
    Trailing,
}

/// <summary>The timestep grids of the schedulers, with numpy's arithmetic so that the integers match diffusers.</summary>
internal static class TimestepGrid
{
    /// <summary>
    /// DDPM and DDIM: N descending timesteps. Leading: i·(T // N) + offset; linspace: round(linspace(0, T − 1, N));
    /// trailing: round(T − i·T/N) − 1. (diffusers builds trailing with a float np.arange that, for some N such as 61,
    /// yields an extra trailing element of −1; this grid keeps exactly the first N, which agree.)
    /// </summary>
    public static int[] Descending(TimestepSpacing spacing, int trainTimesteps, int steps, int stepsOffset)
    {
        CheckSteps(trainTimesteps, steps);
        var timesteps = new int[steps];
        for (int k = 0; k < steps; k++)
        {
            int i = steps - 1 - k; // position on the ascending grid
            timesteps[k] = spacing switch
            {
                TimestepSpacing.Leading => i * (trainTimesteps / steps) + stepsOffset,
                TimestepSpacing.Linspace => RoundHalfEven(LinspacePoint(trainTimesteps - 1, steps, i)),
                TimestepSpacing.Trailing => TrailingPoint(trainTimesteps, steps, k),
                _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "unknown timestep spacing"),
            };
        }
        return CheckRange(timesteps, trainTimesteps, spacing, stepsOffset);
    }

    /// <summary>
    /// DPM-Solver: N descending timesteps from a grid of N + 1 points whose last (t = 0 side) point is dropped.
    /// Linspace: round(linspace(0, T − 1, N + 1)); leading: i·(T // (N + 1)) + offset for i = N..1; trailing as DDIM.
    /// </summary>
    public static int[] DpmSolver(TimestepSpacing spacing, int trainTimesteps, int steps, int stepsOffset)
    {
        CheckSteps(trainTimesteps, steps);
        var timesteps = new int[steps];
        for (int k = 0; k < steps; k++)
        {
            int i = steps - k; // position on the ascending grid of N + 1 points; point 0 is dropped
            timesteps[k] = spacing switch
            {
                TimestepSpacing.Leading => i * (trainTimesteps / (steps + 1)) + stepsOffset,
                TimestepSpacing.Linspace => RoundHalfEven(LinspacePoint(trainTimesteps - 1, steps + 1, i)),
                TimestepSpacing.Trailing => TrailingPoint(trainTimesteps, steps, k),
                _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "unknown timestep spacing"),
            };
        }
        return CheckRange(timesteps, trainTimesteps, spacing, stepsOffset);
    }

    private static void CheckSteps(int trainTimesteps, int steps)
    {
        if (steps < 1 || steps > trainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"inference steps must lie in [1, {trainTimesteps}] (the training timesteps)");
    }

    private static int[] CheckRange(int[] timesteps, int trainTimesteps, TimestepSpacing spacing, int stepsOffset)
    {
        foreach (int t in timesteps)
            if ((uint)t >= (uint)trainTimesteps)
                throw new ArgumentException($"{spacing} spacing with steps_offset {stepsOffset} gives timestep {t}, outside [0, {trainTimesteps})");
        return timesteps;
    }

    /// <summary>Point i of numpy's linspace(0, stop, count): i·(stop / (count − 1)), the last point exactly stop.</summary>
    private static double LinspacePoint(int stop, int count, int i) =>
        count == 1 ? 0 : i == count - 1 ? stop : i * ((double)stop / (count - 1));

    private static int TrailingPoint(int trainTimesteps, int steps, int k) =>
        RoundHalfEven(trainTimesteps - k * ((double)trainTimesteps / steps)) - 1;

    private static int RoundHalfEven(double value) => (int)Math.Round(value, MidpointRounding.ToEven);
}
