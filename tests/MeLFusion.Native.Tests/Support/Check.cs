namespace MeLFusion.Native.Tests.Support;

/// <summary>Tolerance comparisons that report the worst element, not just "not equal".</summary>
public static class Check
{
    /// <summary>Asserts |actual - expected| &lt;= atol + rtol * |expected| everywhere.</summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float atol, float rtol, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs((double)actual[i] - expected[i]);
            double excess = diff - (atol + rtol * Math.Abs(expected[i]));
            if (double.IsNaN(actual[i]) != double.IsNaN(expected[i]) || excess > worstExcess || (double.IsNaN(diff) && !double.IsNaN(expected[i])))
            {
                worstExcess = double.IsNaN(excess) ? double.PositiveInfinity : excess;
                worst = i;
            }
        }
        Assert.True(worst < 0, worst < 0 ? "" :
            $"{what}: element {worst} is {actual[worst]}, expected {expected[worst]} (atol {atol}, rtol {rtol})");
    }

    /// <summary>Largest absolute difference; for messages and benchmarks.</summary>
    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
