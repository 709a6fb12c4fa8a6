"""Fixtures for SoftmaxOp (last dim). Expected: F.softmax in float64, rounded to f32.

Covers odd row lengths for every SIMD tail, rows of huge magnitude (a naive exp would overflow), -inf masks and
rows of equal values.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def main():
    gen = seeded(201)
    tensors = {}
    cases = {
        "len1": torch.randn(4, 1, generator=gen),
        "len7": torch.randn(3, 7, generator=gen) * 3,
        "len17": torch.randn(2, 3, 17, generator=gen) * 3,
        "len33": torch.randn(5, 33, generator=gen) * 3,
        "len1023": torch.randn(3, 1023, generator=gen) * 5,
        "huge_magnitude": torch.randn(4, 19, generator=gen) * 1e4,
        "large_equal": torch.full((2, 35), 88.5) + torch.arange(35).float() * 1e-3,
        "many_rows": torch.randn(400, 24, generator=gen) * 4,
    }
    masked = torch.randn(3, 40, generator=gen) * 2
    masked[0, 5:] = float("-inf")
    masked[1, ::3] = float("-inf")
    masked[2, :39] = float("-inf")
    cases["neg_inf_mask"] = masked
    for name, x in cases.items():
        tensors[f"{name}.x"] = x
        tensors[f"{name}.out"] = F.softmax(x.double(), dim=-1).float()
    save_fixture("softmax", tensors)


if __name__ == "__main__":
    main()
