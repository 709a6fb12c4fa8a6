"""Fixtures for Evaluation/FrechetDistance.cs: the Fréchet distance between Gaussians fitted to two sets of
embeddings, computed as pytorch-fid / FAD do it, with scipy.linalg.sqrtm of the covariance product:
||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr(sqrtm(S_a S_b)), covariances by numpy.cov (divisor n - 1).
Embeddings are stored as f32 and the reference works in float64 on those f32 values; the distance is kept exactly in
the metadata (repr of the double) as well as as an f32 tensor.
"""
import numpy as np
from scipy import linalg

from common import save_fixture


def frechet(a, b):
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(s_a.dot(s_b), disp=False)
    if np.iscomplexobj(root):
        assert np.allclose(np.diagonal(root).imag, 0, atol=1e-6), np.abs(root.imag).max()
        root = root.real
    diff = mu_a - mu_b
    return float(diff.dot(diff) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(root))


def main():
    rng = np.random.default_rng(41)
    cases = {}
    # (rows of a, rows of b, width): more rows than dims, so both covariances are full rank.
    for name, (n_a, n_b, d, shift, mix) in {
        "small": (12, 9, 3, 0.5, 0.3),
        "shifted": (60, 50, 8, 2.0, 0.0),
        "correlated": (200, 150, 16, 0.3, 0.8),
        "near_identical": (40, 40, 6, 0.0, 0.0),
    }.items():
        a = rng.standard_normal((n_a, d))
        b = rng.standard_normal((n_b, d)) @ (np.eye(d) + mix * rng.standard_normal((d, d))) + shift
        if name == "near_identical":
            b = a + 1e-3 * rng.standard_normal((n_a, d))
        cases[name] = (a.astype(np.float32), b.astype(np.float32))

    tensors, meta = {}, {}
    for name, (a, b) in cases.items():
        distance = frechet(a.astype(np.float64), b.astype(np.float64))
        tensors[f"{name}.a"] = a
        tensors[f"{name}.b"] = b
        tensors[f"{name}.distance"] = np.array([distance], dtype=np.float32)
        meta[f"{name}.distance"] = repr(distance)
    save_fixture("frechet", tensors, meta)


if __name__ == "__main__":
    main()
