using System.Collections.Concurrent;

namespace MeLFusion.Native.IO.Audio;

/// <summary>
/// Rational-ratio resampling by L/M (the two rates divided by their gcd, e.g. 44100 → 16000 is 160/441) with a
/// polyphase windowed-sinc FIR: the filter of <c>scipy.signal.resample_poly</c> with its default Kaiser window
/// (β = 5), cutoff at the lower of the two Nyquist frequencies (1/max(L, M) of the upsampled rate), half-length
/// 10·max(L, M) taps, gain L, and zeros beyond the input's ends. Output sample k is
/// <c>y[k] = Σₙ x[n]·h(k·M − n·L)</c> with h centred on 0, so the output has ⌈N·L/M⌉ samples aligned with the input's
/// first sample, exactly as scipy's; the sums run in f64.
/// </summary>
public sealed class PolyphaseResampler
{
    /// <summary>β of the Kaiser window (scipy's default window for resample_poly).</summary>
    public const double KaiserBeta = 5.0;

    /// <summary>Largest reduced L or M: the filter has 20·max(L, M) + 1 taps, held in memory (16 MB at this bound).</summary>
    public const int MaxRatioTerm = 100_000;

    private static readonly ConcurrentDictionary<(int, int), PolyphaseResampler> Cache = new();

    public int FromRate { get; }
    public int ToRate { get; }

    /// <summary>Upsampling factor L (the target rate over the rates' gcd).</summary>
    public int Up { get; }

    /// <summary>Downsampling factor M (the source rate over the rates' gcd).</summary>
    public int Down { get; }

    /// <summary>Per phase p = (k·M) mod L: the taps h(j·L + p) ordered by increasing input index, and the offset
    /// (relative to q = ⌊k·M / L⌋) of the input sample the first tap multiplies.</summary>
    private readonly double[][] _phaseTaps;
    private readonly int[] _phaseFirstInput;

    private PolyphaseResampler(int fromRate, int toRate)
    {
        FromRate = fromRate;
        ToRate = toRate;
        int gcd = Gcd(fromRate, toRate);
        Up = toRate / gcd;
        Down = fromRate / gcd;
        int maxRate = Math.Max(Up, Down);
        if (maxRate > MaxRatioTerm)
            throw new ArgumentException($"resampling {fromRate} Hz to {toRate} Hz reduces to {Up}/{Down}; terms above {MaxRatioTerm} are not supported");
        int halfLength = 10 * maxRate;
        var filter = LowPass(2 * halfLength + 1, 1.0 / maxRate, Up);

        // y[k] = Σ_j x[q − j]·h[j·L + p + halfLength] over |j·L + p| ≤ halfLength, with k·M = q·L + p.
        _phaseTaps = new double[Up][];
        _phaseFirstInput = new int[Up];
        for (int p = 0; p < Up; p++)
        {
            int jMin = CeilDiv(-halfLength - p, Up), jMax = FloorDiv(halfLength - p, Up);
            var taps = new double[jMax - jMin + 1];
            for (int j = jMax; j >= jMin; j--) taps[jMax - j] = filter[j * Up + p + halfLength];
            _phaseTaps[p] = taps;
            _phaseFirstInput[p] = -jMax;
        }
    }

    /// <summary>The resampler between two rates; filters are designed once per pair and shared (instances are immutable).</summary>
    public static PolyphaseResampler For(int fromRate, int toRate)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(fromRate, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(toRate, 1);
        return Cache.GetOrAdd((fromRate, toRate), key => new PolyphaseResampler(key.Item1, key.Item2));
    }

    /// <summary>Resamples one channel; equal rates return a copy.</summary>
    public static float[] Resample(ReadOnlySpan<float> input, int fromRate, int toRate) =>
        fromRate == toRate ? input.ToArray() : For(fromRate, toRate).Process(input);

    /// <summary>⌈N·L/M⌉, scipy's output length.</summary>
    public long OutputLength(long inputLength) => (inputLength * Up + Down - 1) / Down;

    public float[] Process(ReadOnlySpan<float> input)
    {
        long length = OutputLength(input.Length);
        if (length > Array.MaxLength) throw new ArgumentException($"resampling {input.Length} samples from {FromRate} Hz to {ToRate} Hz gives {length} samples, more than an array holds");
        var output = new float[length];
        for (long k = 0; k < output.Length; k++)
        {
            long position = k * Down;
            int phase = (int)(position % Up);
            long first = position / Up + _phaseFirstInput[phase];
            var taps = _phaseTaps[phase];
            // Clip the tap range to the input: samples outside it are zeros.
            int begin = (int)Math.Max(0, -first), end = (int)Math.Min(taps.Length, input.Length - first);
            double sum = 0;
            for (int t = begin; t < end; t++) sum += taps[t] * input[(int)(first + t)];
            output[k] = (float)sum;
        }
        return output;
    }

    /// <summary>
    /// scipy.signal.firwin(taps, cutoff, window=('kaiser', β)) scaled by <paramref name="gain"/>: a sinc at
    /// <paramref name="cutoff"/> (relative to Nyquist) times a symmetric Kaiser window, normalised to unit DC gain.
    /// </summary>
    private static double[] LowPass(int taps, double cutoff, double gain)
    {
        var h = new double[taps];
        double centre = (taps - 1) / 2.0, windowScale = 1 / BesselI0(KaiserBeta), sum = 0;
        for (int n = 0; n < taps; n++)
        {
            double m = n - centre, x = cutoff * m, r = m / centre;
            double sinc = x == 0 ? 1 : Math.Sin(Math.PI * x) / (Math.PI * x);
            h[n] = cutoff * sinc * BesselI0(KaiserBeta * Math.Sqrt(Math.Max(0, 1 - r * r))) * windowScale;
            sum += h[n];
        }
        for (int n = 0; n < taps; n++) h[n] *= gain / sum;
        return h;
    }

    /// <summary>Modified Bessel function of the first kind, order 0, by its power series (converges fast for the small β used).</summary>
    private static double BesselI0(double x)
    {
        double term = 1, sum = 1, quarterSquare = x * x / 4;
        for (int k = 1; term > sum * 1e-17; k++)
        {
            term *= quarterSquare / ((double)k * k);
            sum += term;
        }
        return sum;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);
    private static int CeilDiv(int a, int b) => -FloorDiv(-a, b);
}
