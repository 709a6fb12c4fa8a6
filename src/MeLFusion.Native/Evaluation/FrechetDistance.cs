namespace MeLFusion.Native.Evaluation;

/// <summary>The mean and the unbiased covariance (divisor n − 1, as numpy.cov) of a set of embeddings.</summary>
public sealed record GaussianStatistics(double[] Mean, double[,] Covariance, int Count)
{
    /// <exception cref="ArgumentException">Fewer than two samples, or samples of different widths.</exception>
    public static GaussianStatistics Of(IReadOnlyList<float[]> samples)
    {
        if (samples.Count < 2) throw new ArgumentException($"Gaussian statistics need at least 2 samples for a covariance, got {samples.Count}");
        int d = samples[0].Length;
        if (samples.Any(s => s.Length != d)) throw new ArgumentException($"Gaussian statistics: samples differ in width (the first has {d})");
        var mean = new double[d];
        foreach (var s in samples)
            for (int i = 0; i < d; i++) mean[i] += s[i];
        for (int i = 0; i < d; i++) mean[i] /= samples.Count;
        var covariance = new double[d, d];
        var centred = new double[d];
        foreach (var s in samples)
        {
            for (int i = 0; i < d; i++) centred[i] = s[i] - mean[i];
            for (int i = 0; i < d; i++)
            for (int j = 0; j <= i; j++) covariance[i, j] += centred[i] * centred[j];
        }
        for (int i = 0; i < d; i++)
        for (int j = 0; j <= i; j++) covariance[j, i] = covariance[i, j] /= samples.Count - 1;
        return new GaussianStatistics(mean, covariance, samples.Count);
    }
}

/// <summary>
/// The Fréchet distance between two Gaussians fitted to embeddings (FID, FAD):
/// d² = ‖μa − μb‖² + tr Σa + tr Σb − 2·tr (Σa·Σb)^½. The trace of the square root is computed as
/// tr (Σa^½·Σb·Σa^½)^½ — a symmetric positive semi-definite matrix with the same eigenvalues as Σa·Σb — through
/// <see cref="SymmetricEigen"/>, so no general matrix square root is needed and singular covariances (fewer samples
/// than dimensions) are fine. Eigenvalues that rounding makes slightly negative count as zero.
/// </summary>
public static class FrechetDistance
{
    /// <summary>d² between the Gaussians of <paramref name="a"/> and <paramref name="b"/> (never negative).</summary>
    public static double Between(IReadOnlyList<float[]> a, IReadOnlyList<float[]> b) => Between(GaussianStatistics.Of(a), GaussianStatistics.Of(b));

    public static double Between(GaussianStatistics a, GaussianStatistics b)
    {
        int d = a.Mean.Length;
        if (b.Mean.Length != d) throw new ArgumentException($"Fréchet distance: embeddings of width {d} and {b.Mean.Length}");
        double meanTerm = 0, traces = 0;
        for (int i = 0; i < d; i++)
        {
            double diff = a.Mean[i] - b.Mean[i];
            meanTerm += diff * diff;
            traces += a.Covariance[i, i] + b.Covariance[i, i];
        }
        var rootA = SquareRoot(a.Covariance);
        var product = Symmetrized(Multiply(Multiply(rootA, b.Covariance), rootA));
        double traceRoot = SymmetricEigen.Decompose(product).Values.Sum(v => Math.Sqrt(Math.Max(v, 0)));
        return Math.Max(0, meanTerm + traces - 2 * traceRoot);
    }

    /// <summary>The symmetric square root V·diag(√λ)·Vᵀ of a positive semi-definite matrix.</summary>
    private static double[,] SquareRoot(double[,] matrix)
    {
        var (values, vectors) = SymmetricEigen.Decompose(matrix);
        int n = values.Length;
        var root = new double[n, n];
        for (int k = 0; k < n; k++)
        {
            double scale = Math.Sqrt(Math.Max(values[k], 0));
            if (scale == 0) continue;
            for (int i = 0; i < n; i++)
            {
                double vik = vectors[i, k] * scale;
                for (int j = 0; j < n; j++) root[i, j] += vik * vectors[j, k];
            }
        }
        return Symmetrized(root);
    }

    private static double[,] Multiply(double[,] x, double[,] y)
    {
        int n = x.GetLength(0), m = y.GetLength(1), inner = x.GetLength(1);
        var result = new double[n, m];
        for (int i = 0; i < n; i++)
        for (int k = 0; k < inner; k++)
        {
            double xik = x[i, k];
            if (xik == 0) continue;
            for (int j = 0; j < m; j++) result[i, j] += xik * y[k, j];
        }
        return result;
    }

    /// <summary>(M + Mᵀ)/2: removes the rounding asymmetry of products that are symmetric in exact arithmetic.</summary>
    private static double[,] Symmetrized(double[,] m)
    {
        int n = m.GetLength(0);
        var s = new double[n, n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) s[i, j] = 0.5 * (m[i, j] + m[j, i]);
        return s;
    }
}
