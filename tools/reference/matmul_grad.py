"""Gradient fixtures for the GEMM family: torch.matmul (broadcast batch dims, transposed operands) and F.linear (3-D x,
with and without bias).

Each case stores the inputs, an output gradient dy and torch autograd's input gradients (x.grad after y.backward(dy)),
computed in float64 (grad_common.autograd).
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded
from grad_common import autograd


def matmul_cases(gen):
    # name: (a stored, b stored, transpose_a, transpose_b)
    cases = {
        "shared_b": ((2, 3, 4, 5), (5, 6), False, False),  # db folds the batch into one GEMM
        "shared_b_trans": ((2, 3, 4, 5), (6, 5), False, True),
        "trans_a_shared_b": ((2, 5, 4), (5, 6), True, False),  # db through a batched product and a sum
        "shared_a": ((4, 5), (2, 3, 5, 6), False, False),
        "bcast_both": ((3, 1, 4, 5), (2, 6, 5), False, True),
        "trans_both": ((2, 5, 4), (2, 6, 5), True, True),
        "plain": ((7, 3), (3, 5), False, False),
    }
    tensors, meta = {}, {}
    for name, (shape_a, shape_b, ta, tb) in cases.items():
        a = torch.randn(*shape_a, generator=gen)
        b = torch.randn(*shape_b, generator=gen)

        def product(x, y, ta=ta, tb=tb):
            return torch.matmul(x.transpose(-1, -2) if ta else x, y.transpose(-1, -2) if tb else y)

        dy, (da, db) = autograd(product, [a, b], gen)
        tensors.update({f"{name}.a": a, f"{name}.b": b, f"{name}.dy": dy, f"{name}.da": da, f"{name}.db": db})
        meta[f"{name}.transpose_a"] = ta
        meta[f"{name}.transpose_b"] = tb
    return tensors, meta


def linear_cases(gen):
    # name: (x, weight, with bias)
    cases = {
        "x3d_bias": ((2, 3, 5), (4, 5), True),
        "x2d": ((6, 5), (3, 5), False),
        "x1d_bias": ((5,), (4, 5), True),
    }
    tensors, meta = {}, {}
    for name, (shape_x, shape_w, bias) in cases.items():
        inputs = [torch.randn(*shape_x, generator=gen), torch.randn(*shape_w, generator=gen)]
        if bias:
            inputs.append(torch.randn(shape_w[0], generator=gen))
        dy, grads = autograd(F.linear, inputs, gen)
        for key, x, grad in zip(("x", "weight", "bias"), inputs, grads):
            tensors[f"{name}.{key}"] = x
            tensors[f"{name}.d{key}"] = grad
        tensors[f"{name}.dy"] = dy
        meta[f"{name}.bias"] = bias
    return tensors, meta


if __name__ == "__main__":
    gen = seeded(31)
    save_fixture("matmul_grad", *matmul_cases(gen))
    save_fixture("linear_grad", *linear_cases(gen))
