"""Shared by the *_grad.py fixture scripts: torch autograd's input gradients for a given output gradient."""
import torch


def autograd(fn, inputs, gen, differentiable=None):
    """The output gradient dy (standard normal, float32) and the gradients of fn(*inputs) for y.backward(dy), computed
    in float64 from the float32 inputs, so expected values carry no error of their own. `differentiable` flags which
    inputs get a gradient (all by default); the others (integer ids) are passed through and get None."""
    flags = differentiable or [True] * len(inputs)
    leaves = [x.double().requires_grad_() if flag else x for x, flag in zip(inputs, flags)]
    y = fn(*leaves)
    dy = torch.randn(*y.shape, generator=gen)
    y.backward(dy.double())
    return dy, [x.grad.float() if flag else None for x, flag in zip(leaves, flags)]
