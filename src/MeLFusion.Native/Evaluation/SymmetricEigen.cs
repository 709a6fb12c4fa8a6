namespace MeLFusion.Native.Evaluation;

/// <summary>
/// Eigen-decomposition of a real symmetric matrix by the cyclic Jacobi method: plane rotations, each zeroing one
/// off-diagonal pair, swept over all pairs in a fixed order until the off-diagonal mass is negligible. Accurate to a
/// few ulps of the largest eigenvalue, deterministic, and plenty fast for the few-hundred-wide covariances it is used on.
/// </summary>
public static class SymmetricEigen
{
    private const int MaxSweeps = 64;

    /// <summary>Eigenvalues (unsorted) and the eigenvectors as the columns of <c>Vectors</c>: A = V·diag(values)·Vᵀ.</summary>
    /// <exception cref="ArgumentException">The matrix is not square, not symmetric or not finite.</exception>
    public static (double[] Values, double[,] Vectors) Decompose(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n) throw new ArgumentException($"eigen-decomposition: the matrix is {n}x{matrix.GetLength(1)}, not square");
        var a = (double[,])matrix.Clone();
        double total = 0;
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            if (!double.IsFinite(a[i, j])) throw new ArgumentException($"eigen-decomposition: element ({i}, {j}) is {a[i, j]}");
            if (a[i, j] != a[j, i]) throw new ArgumentException($"eigen-decomposition: the matrix is not symmetric at ({i}, {j})");
            total += a[i, j] * a[i, j];
        }
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;

        for (int sweep = 0; ; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) off += a[p, q] * a[p, q];
            // Converged when the off-diagonal part is below double rounding of the whole matrix.
            if (off <= 1e-30 * total) break;
            if (sweep == MaxSweeps) throw new InvalidOperationException($"eigen-decomposition: no convergence after {MaxSweeps} Jacobi sweeps");
            for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                if (a[p, q] != 0) Rotate(a, v, p, q, n);
        }

        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = a[i, i];
        return (values, v);
    }

    /// <summary>A ← JᵀAJ and V ← VJ for the rotation J in the (p, q) plane that zeroes a[p, q].</summary>
    private static void Rotate(double[,] a, double[,] v, int p, int q, int n)
    {
        double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
        // The smaller root of t² + 2θt − 1 = 0: a rotation of at most 45°, which keeps the sweep stable.
        double t = (theta >= 0 ? 1 : -1) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
        double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++)
        {
            double kp = a[k, p], kq = a[k, q];
            a[k, p] = c * kp - s * kq;
            a[k, q] = s * kp + c * kq;
        }
        for (int k = 0; k < n; k++)
        {
            double pk = a[p, k], qk = a[q, k];
            a[p, k] = c * pk - s * qk;
            a[q, k] = s * pk + c * qk;
        }
        a[p, q] = a[q, p] = 0;
        for (int k = 0; k < n; k++)
        {
            double kp = v[k, p], kq = v[k, q];
            v[k, p] = c * kp - s * kq;
            v[k, q] = s * kp + c * kq;
        }
    }
}
