using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Training;

/// <summary>The training losses as graph compositions; each returns a [1] value, differentiable by autograd.</summary>
public static class Losses
{
    /// <summary>
    /// The diffusion loss: per example the mean squared error between <paramref name="prediction"/> and
    /// <paramref name="target"/> (v or ε, [B, ...]), weighted by <paramref name="weights"/> [B] (Min-SNR-γ), averaged
    /// over the batch.
    /// </summary>
    public static Value WeightedMse(GraphBuilder g, Value prediction, Value target, Value weights)
    {
        int batch = prediction.Shape[0];
        long perExample = prediction.Shape.ElementCount / Math.Max(1, batch);
        var squared = g.Square(g.Sub(prediction, target));
        var perExampleSum = g.SumTo(g.Reshape(squared, batch, -1), [batch, 1]);
        var weighted = g.Mul(perExampleSum, g.Reshape(weights, batch, 1));
        return g.Scale(g.Sum(weighted), 1f / (perExample * batch));
    }

    /// <summary>Mean absolute error over all elements.</summary>
    public static Value L1(GraphBuilder g, Value prediction, Value target) => g.Mean(g.Abs(g.Sub(prediction, target)));

    /// <summary>
    /// KL(N(mean, exp(logVariance)) ‖ N(0, 1)) averaged over latent elements:
    /// 0.5·mean(mean² + exp(logVariance) − 1 − logVariance).
    /// </summary>
    public static Value GaussianKl(GraphBuilder g, Value mean, Value logVariance)
    {
        var terms = g.Sub(g.Add(g.Square(mean), g.Exp(logVariance)), g.AddScalar(logVariance, 1f));
        return g.Scale(g.Mean(terms), 0.5f);
    }

    /// <summary>One STFT resolution of <see cref="MultiResolutionStft"/>.</summary>
    public readonly record struct StftResolution(int FftSize, int Hop, int WindowLength);

    /// <summary>The resolutions of Parallel WaveGAN's multi-resolution STFT loss.</summary>
    public static StftResolution[] DefaultResolutions { get; } = [new(1024, 120, 600), new(2048, 240, 1200), new(512, 50, 240)];

    /// <summary>
    /// The multi-resolution STFT loss of generated audio <paramref name="generated"/> against <paramref name="real"/>
    /// ([B, samples]): per resolution the spectral convergence ‖|S| − |Ŝ|‖_F / ‖|S|‖_F plus the mean absolute
    /// difference of log magnitudes, averaged over the resolutions.
    /// </summary>
    public static Value MultiResolutionStft(GraphBuilder g, Value generated, Value real, IReadOnlyList<StftResolution> resolutions)
    {
        Value? total = null;
        foreach (var r in resolutions)
        {
            var s = g.StftMagnitude(real, r.FftSize, r.Hop, r.WindowLength);
            var sHat = g.StftMagnitude(generated, r.FftSize, r.Hop, r.WindowLength);
            // The epsilons keep sqrt and log differentiable where a bin is exactly zero.
            var convergence = g.Div(g.Sqrt(g.AddScalar(g.Sum(g.Square(g.Sub(s, sHat))), 1e-12f)), g.Sqrt(g.AddScalar(g.Sum(g.Square(s)), 1e-12f)));
            var logMagnitude = L1(g, g.Log(g.AddScalar(sHat, 1e-7f)), g.Log(g.AddScalar(s, 1e-7f)));
            var term = g.Add(convergence, logMagnitude);
            total = total is null ? term : g.Add(total, term);
        }
        return g.Scale(total ?? throw new ArgumentException("multi-resolution STFT loss: no resolutions"), 1f / resolutions.Count);
    }

    /// <summary>
    /// Symmetric InfoNCE (CLIP's loss) between <paramref name="a"/> and <paramref name="b"/> [B, D]: rows are
    /// L2-normalised, logits = a·bᵀ / <paramref name="temperature"/>, and the matching pair of each row is the target
    /// in both directions. Logits are bounded by 1/temperature, so exp needs no max shift for temperatures ≥ 0.02.
    /// </summary>
    public static Value Contrastive(GraphBuilder g, Value a, Value b, Value identity, float temperature)
    {
        int batch = a.Shape[0];
        var logits = g.Scale(g.MatMul(Normalize(g, a), Normalize(g, b), transposeB: true), 1f / temperature);
        var positives = g.Sum(g.Mul(logits, identity));
        var rows = g.Sum(g.Log(g.SumTo(g.Exp(logits), [batch, 1])));
        var columns = g.Sum(g.Log(g.SumTo(g.Exp(logits), [1, batch])));
        // mean over rows of (logsumexp_row − positive) and the same over columns, averaged.
        return g.Scale(g.Sub(g.Add(rows, columns), g.Scale(positives, 2f)), 0.5f / batch);
    }

    /// <summary>
    /// Softmax cross-entropy of <paramref name="logits"/> [B, C] against target distributions <paramref name="targets"/>
    /// [B, C] (one-hot labels), averaged over the batch: −(1/B)·Σ targets·log(softmax(logits) + 1e-30). The softmax op
    /// subtracts each row's maximum before exp (an unshifted log-sum-exp would overflow for logits above about 88). The
    /// 1e-30 keeps log finite when a probability underflows to 0 and is below half an f32 ulp of any probability above
    /// 2e-23, so the loss and its gradient (softmax − target) are exact while the target's logit trails the row's
    /// maximum by less than about 52; beyond that the gradient fades (and vanishes where the probability underflows,
    /// near 87), which a classifier trained from moderate initial logits does not reach.
    /// </summary>
    public static Value CrossEntropy(GraphBuilder g, Value logits, Value targets)
    {
        if (logits.Shape.Rank != 2 || !targets.Shape.SameDims(logits.Shape))
            throw new ArgumentException($"cross-entropy: logits {logits.Shape} and targets {targets.Shape} must both be [batch, classes]");
        var logProbabilities = g.Log(g.AddScalar(g.Softmax(logits), 1e-30f));
        return g.Scale(g.Sum(g.Mul(targets, logProbabilities)), -1f / logits.Shape[0]);
    }

    private static Value Normalize(GraphBuilder g, Value x) =>
        g.Div(x, g.Sqrt(g.AddScalar(g.SumTo(g.Square(x), [x.Shape[0], 1]), 1e-12f)));
}
