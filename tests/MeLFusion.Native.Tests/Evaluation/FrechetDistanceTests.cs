using System.Globalization;
using MeLFusion.Native.Evaluation;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Evaluation;

public class FrechetDistanceTests
{
    private static float[][] Rows(float[] values, int width) => values.Chunk(width).ToArray();

    /// <summary>Against pytorch-fid's formula with scipy.linalg.sqrtm (tools/reference/frechet.py), in double.</summary>
    [Fact]
    public void MatchesScipy()
    {
        using var f = Fixture.Open("frechet");
        Assert.Equal(["small", "shifted", "correlated", "near_identical"], f.Cases);
        foreach (string c in f.Cases)
        {
            int width = f.Shape($"{c}.a")[1];
            double expected = double.Parse(f.Meta($"{c}.distance"), CultureInfo.InvariantCulture);
            double actual = FrechetDistance.Between(Rows(f.F32($"{c}.a"), width), Rows(f.F32($"{c}.b"), width));
            Assert.True(Math.Abs(actual - expected) <= 1e-9 + 1e-9 * expected, $"{c}: {actual}, scipy {expected}");
        }
    }

    private static float[][] Gaussian(int rows, int width, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows).Select(_ => Enumerable.Range(0, width).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray()).ToArray();
    }

    [Fact]
    public void IdenticalSetsAreAtDistanceZeroAndATranslationCostsItsSquaredLength()
    {
        var a = Gaussian(30, 10, 1);
        Assert.True(FrechetDistance.Between(a, a) < 1e-10, $"identical sets: {FrechetDistance.Between(a, a)}");
        var shift = Enumerable.Range(0, 10).Select(i => 0.1f * i - 0.3f).ToArray();
        var moved = a.Select(row => row.Select((v, i) => v + shift[i]).ToArray()).ToArray();
        // Float rounding of the shifted rows perturbs the covariance by about 1e-7 relative.
        double squared = shift.Sum(s => (double)s * s);
        Assert.True(Math.Abs(FrechetDistance.Between(a, moved) - squared) < 1e-5, $"{FrechetDistance.Between(a, moved)} vs |shift|² {squared}");
    }

    /// <summary>Fewer samples than dimensions (the usual case of a few generated clips and a 128-d embedding): singular
    /// covariances still give a finite, symmetric, non-negative distance, zero for identical sets.</summary>
    [Fact]
    public void SingularCovariancesAreFine()
    {
        var a = Gaussian(5, 16, 2);
        var b = Gaussian(7, 16, 3);
        double ab = FrechetDistance.Between(a, b), ba = FrechetDistance.Between(b, a);
        Assert.True(double.IsFinite(ab) && ab > 0, $"{ab}");
        Assert.True(Math.Abs(ab - ba) < 1e-9 * ab, $"{ab} vs {ba}");
        Assert.True(FrechetDistance.Between(a, a) < 1e-9, $"{FrechetDistance.Between(a, a)}");
    }

    [Fact]
    public void RejectsTooFewSamplesAndMismatchedWidths()
    {
        Assert.Contains("at least 2 samples", Assert.Throws<ArgumentException>(() => GaussianStatistics.Of([new float[3]])).Message);
        Assert.Contains("width 3 and 4", Assert.Throws<ArgumentException>(() => FrechetDistance.Between(Gaussian(3, 3, 1), Gaussian(3, 4, 1))).Message);
    }

    [Fact]
    public void EigenDecompositionReconstructsTheMatrixWithOrthonormalVectors()
    {
        const int n = 12;
        var random = new Random(9);
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) m[i, j] = m[j, i] = random.NextDouble() * 2 - 1;
        var (values, vectors) = SymmetricEigen.Decompose(m);
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            double reconstructed = 0, dot = 0;
            for (int k = 0; k < n; k++)
            {
                reconstructed += vectors[i, k] * values[k] * vectors[j, k];
                dot += vectors[k, i] * vectors[k, j];
            }
            Assert.True(Math.Abs(reconstructed - m[i, j]) < 1e-12, $"A[{i},{j}] = {m[i, j]}, V·Λ·Vᵀ gives {reconstructed}");
            Assert.True(Math.Abs(dot - (i == j ? 1 : 0)) < 1e-12, $"columns {i} and {j} of V: dot {dot}");
        }
    }

    [Fact]
    public void EigenDecompositionRejectsNonSymmetricInput()
    {
        var e = Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose(new double[,] { { 1, 2 }, { 3, 4 } }));
        Assert.Contains("not symmetric at (0, 1)", e.Message);
        Assert.Contains("not square", Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose(new double[2, 3])).Message);
    }
}
