"""Fixtures for the training losses composed from graph ops (Training/Losses.cs).

cross_entropy: F.cross_entropy (mean over the batch) in float64 and d loss / d logits from loss.backward(), for
one-hot and soft targets, and for logits far above exp's f32 range (an unshifted log-sum-exp would overflow) whose
target logits stay within 50 of their row's maximum, where the loss is exact.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def one_hot(labels, classes):
    return F.one_hot(labels, classes).double()


def main():
    gen = seeded(307)
    cases = {}
    small = torch.randn(4, 8, generator=gen, dtype=torch.float64)
    cases["one_hot"] = (small, one_hot(torch.randint(0, 8, (4,), generator=gen), 8))
    large = torch.randn(5, 6, generator=gen, dtype=torch.float64) * 8 + 120
    large_labels = torch.randint(0, 6, (5,), generator=gen)
    gaps = large.max(dim=1).values - large[torch.arange(5), large_labels]
    assert gaps.max() < 50, gaps
    cases["large_logits"] = (large, one_hot(large_labels, 6))
    soft = torch.softmax(torch.randn(3, 5, generator=gen, dtype=torch.float64), dim=1)
    cases["soft_targets"] = (torch.randn(3, 5, generator=gen, dtype=torch.float64) * 3, soft)
    cases["single_row"] = (torch.randn(1, 3, generator=gen, dtype=torch.float64), one_hot(torch.tensor([2]), 3))

    tensors = {}
    for name, (logits, targets) in cases.items():
        # Rounded to f32 first, so the reference sees exactly the engine's inputs.
        x = logits.float().double().requires_grad_()
        loss = F.cross_entropy(x, targets.float().double())
        loss.backward()
        tensors[f"{name}.logits"] = x.detach().float()
        tensors[f"{name}.targets"] = targets.float()
        tensors[f"{name}.loss"] = loss.detach().reshape(1).float()
        tensors[f"{name}.grad"] = x.grad.float()
    save_fixture("cross_entropy", tensors)


if __name__ == "__main__":
    main()
