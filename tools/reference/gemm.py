"""Fixtures for the GEMM family: matmul.safetensors (torch.matmul) and linear.safetensors (F.linear).

Expected outputs are computed by torch in float64 from the float32 inputs, so they are exact to f32 rounding and the
tests measure only the engine's own f32 summation error.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def matmul_fixture():
    g = seeded(1234)
    # name: (a stored shape, b stored shape, transpose_a, transpose_b)
    cases = {
        "tiny": ((1, 1), (1, 1), False, False),
        "odd": ((7, 13), (13, 5), False, False),
        "mid": ((33, 65), (65, 17), False, False),
        "deep": ((3, 600), (600, 20), False, False),  # K spans more than one depth block (at most 512)
        "wide": ((3, 20), (20, 97), False, False),
        "tall": ((97, 20), (20, 3), False, False),  # thin N: the kernel computes the transposed product
        "trans_a": ((13, 7), (13, 5), True, False),
        "trans_b": ((7, 13), (5, 13), False, True),
        "trans_both": ((65, 33), (17, 65), True, True),
        "batched": ((3, 7, 13), (3, 13, 5), False, False),
        "bcast_b": ((2, 3, 7, 13), (13, 5), False, False),  # a weight shared by every batch item
        "row_vectors": ((4, 1, 13), (13, 5), False, False),  # single-row matrices stacked into one GEMM
        "bcast_a": ((5, 8), (2, 8, 3), False, False),
        "bcast_both": ((4, 1, 6, 9), (3, 9, 5), False, False),
        "bcast_trans": ((2, 1, 9, 6), (1, 3, 5, 9), True, True),
        "empty_k": ((4, 0), (0, 3), False, False),
    }
    tensors, meta = {}, {}
    for name, (shape_a, shape_b, ta, tb) in cases.items():
        a = torch.randn(*shape_a, generator=g)
        b = torch.randn(*shape_b, generator=g)
        ea = a.double().transpose(-1, -2) if ta else a.double()
        eb = b.double().transpose(-1, -2) if tb else b.double()
        tensors[f"{name}.a"] = a
        tensors[f"{name}.b"] = b
        tensors[f"{name}.out"] = torch.matmul(ea, eb).float()
        meta[f"{name}.transpose_a"] = ta
        meta[f"{name}.transpose_b"] = tb
        meta[f"{name}.permute_a"] = ""
        meta[f"{name}.permute_b"] = ""
    # Strided views, read in place: (a stored, b stored, permutation of a, permutation of b) as in attention, where
    # q [B, T, H, D] becomes [B, H, T, D] and k [B, S, H, D] becomes [B, H, D, S].
    views = {
        "permuted": ((2, 7, 3, 13), (2, 5, 3, 13), (0, 2, 1, 3), (0, 2, 3, 1)),
        "transposed_view": ((13, 7), (5, 13), (1, 0), (1, 0)),
    }
    for name, (shape_a, shape_b, perm_a, perm_b) in views.items():
        a = torch.randn(*shape_a, generator=g)
        b = torch.randn(*shape_b, generator=g)
        tensors[f"{name}.a"] = a
        tensors[f"{name}.b"] = b
        tensors[f"{name}.out"] = torch.matmul(a.double().permute(*perm_a), b.double().permute(*perm_b)).float()
        meta[f"{name}.transpose_a"] = False
        meta[f"{name}.transpose_b"] = False
        meta[f"{name}.permute_a"] = ",".join(map(str, perm_a))
        meta[f"{name}.permute_b"] = ",".join(map(str, perm_b))
    save_fixture("matmul", tensors, meta)


def linear_fixture():
    g = seeded(4321)
    # name: (x shape, out features, with bias)
    cases = {
        "tiny": ((1, 1), 1, True),
        "vector": ((13,), 5, True),
        "odd": ((3, 7), 5, True),
        "no_bias": ((2, 3, 13), 17, False),
        "mid": ((33, 65), 17, True),
        "deep": ((1, 3, 600), 20, True),
        "wide": ((2, 40), 150, True),
        "zero_in": ((3, 0), 4, True),
    }
    tensors, meta = {}, {}
    for name, (x_shape, out_features, has_bias) in cases.items():
        x = torch.randn(*x_shape, generator=g)
        w = torch.randn(out_features, x_shape[-1], generator=g)
        bias = torch.randn(out_features, generator=g) if has_bias else None
        tensors[f"{name}.x"] = x
        tensors[f"{name}.weight"] = w
        if has_bias:
            tensors[f"{name}.bias"] = bias
        y = F.linear(x.double(), w.double(), None if bias is None else bias.double())
        tensors[f"{name}.out"] = y.float()
        meta[f"{name}.bias"] = has_bias
    save_fixture("linear", tensors, meta)


if __name__ == "__main__":
    matmul_fixture()
    linear_fixture()
