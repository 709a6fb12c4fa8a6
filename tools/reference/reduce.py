"""Fixtures for the reduction and view-gradient ops: torch's sum_to_size, and zero tensors with a strided view of them
assigned (what the gradient of a slice or permuted slice is)."""
import torch

from common import save_fixture, seeded


def reduce_cases(gen):
    cases = {}
    # name: (x dims, target dims)
    for name, (dims, target) in {
        "bias_rows": ((37, 19), (19,)),
        "conv_bias": ((2, 5, 7, 3), (1, 5, 1, 1)),
        "middle": ((3, 4, 5), (3, 1, 5)),
        "all": ((6, 7, 9), (1,)),
        "leading": ((4, 3, 2), (3, 2)),
        "none": ((5, 3), (5, 3)),
        "long_rows": ((130, 33), (33,)),
    }.items():
        x = torch.randn(*dims, generator=gen)
        cases[f"{name}.x"] = x
        cases[f"{name}.out"] = x.double().sum_to_size(*target).float() if target != (1,) else x.double().sum().reshape(1).float()
    return cases


def scatter_cases(gen):
    cases, meta = {}, {}
    # A slice of axis 1, a permuted slice, and a slice of the last axis (step over rows).
    base = torch.zeros(3, 8, 5)
    for name, view in {
        "slice_axis1": lambda t: t[:, 2:6, :],
        "permuted_slice": lambda t: t[:, 1:4, :].permute(2, 0, 1),
        "last_axis": lambda t: t[:, :, 1:4],
    }.items():
        target = torch.zeros_like(base)
        v = view(target)
        x = torch.randn(*v.shape, generator=gen)
        v.copy_(x)
        cases[f"{name}.x"] = x
        cases[f"{name}.out"] = target
    return cases, meta


if __name__ == "__main__":
    gen = seeded(11)
    save_fixture("reduce_sum", reduce_cases(gen))
    tensors, meta = scatter_cases(gen)
    save_fixture("view_scatter", tensors, meta)
