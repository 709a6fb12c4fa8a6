"""Fixtures for the attention gradient (tests/fixtures/attention_grad.safetensors).

Expected dq, dk, dv come from torch autograd in float64 through softmax(Q·Kᵀ·scale + mask_bias)·V per head, backward of
out with the stored dy. The attention op defines the output of a query row whose keys are all masked as zeros (torch
would give NaN, and NaN gradients); the reference reproduces that definition differentiably: such rows attend over an
unmasked copy of the scores and their output is multiplied by 0, so every gradient through them is exactly 0.

Inputs q, k, v, dy are rounded to float16 values and stored as F16 (exact in f32) to keep the file small; gradients are
F32. Layout is the op's: q, dy [B, N, H*D], k, v [B, M, H*D], mask [B, M] (1 = attend, 0 = masked).
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def attention(q, k, v, heads, mask, scale):
    b, n, c = q.shape
    m = k.shape[1]
    d = c // heads
    qh = q.view(b, n, heads, d).transpose(1, 2)
    kh = k.view(b, m, heads, d).transpose(1, 2)
    vh = v.view(b, m, heads, d).transpose(1, 2)
    scores = torch.matmul(qh, kh.transpose(-1, -2)) * scale
    row_valid = torch.ones(b, dtype=q.dtype)
    if mask is not None:
        any_key = mask.bool().any(dim=1)
        effective = torch.where(any_key[:, None], mask.bool(), torch.ones_like(mask.bool()))
        scores = scores.masked_fill(~effective[:, None, None, :], float("-inf"))
        row_valid = any_key.to(q.dtype)
    out = torch.matmul(F.softmax(scores, dim=-1), vh) * row_valid[:, None, None, None]
    return out.transpose(1, 2).reshape(b, n, c)


def case(tensors, meta, name, gen, batch, queries, keys, heads, head_dim, mask=None, scale=None, q_gain=1.0):
    c = heads * head_dim
    q = (torch.randn(batch, queries, c, generator=gen) * q_gain).half()
    k = torch.randn(batch, keys, c, generator=gen).half()
    v = torch.randn(batch, keys, c, generator=gen).half()
    dy = torch.randn(batch, queries, c, generator=gen).half()
    leaves = [x.double().requires_grad_() for x in (q, k, v)]
    out = attention(*leaves, heads, mask, scale if scale is not None else head_dim ** -0.5)
    out.backward(dy.double())
    tensors.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v, f"{name}.dy": dy})
    for label, leaf in zip(("dq", "dk", "dv"), leaves):
        tensors[f"{name}.{label}"] = leaf.grad.float()
    if mask is not None:
        tensors[f"{name}.mask"] = mask.to(torch.int32)
    meta[f"{name}.heads"] = heads
    meta[f"{name}.scale"] = "default" if scale is None else repr(float(scale))


def padding_mask(lengths, keys):
    return (torch.arange(keys)[None, :] < torch.tensor(lengths)[:, None]).to(torch.int32)


def main():
    gen = seeded(4321)
    tensors, meta = {}, {}
    # Self attention over two 64-token tiles, two heads of 8: batch 0 has only its first 50 keys (so its second key
    # tile is all padding), batch 1 scattered holes.
    scattered = (torch.rand(2, 100, generator=gen) > 0.3).to(torch.int32)
    scattered[0, 50:] = 0
    case(tensors, meta, "self_d8_two_tiles", gen, 2, 100, 100, 2, 8, mask=scattered, q_gain=2.0)
    # Self attention, one head of 64, odd token count, padded keys, peaked softmax.
    case(tensors, meta, "self_d64_odd", gen, 1, 37, 37, 1, 64, mask=padding_mask([33], 37), q_gain=2.0)
    # Cross attention of many queries over a few text tokens, two heads of 40, custom scale, no mask.
    case(tensors, meta, "cross_d40_scale", gen, 2, 21, 5, 2, 40, scale=0.3)
    # Few queries over 19 keys; every key of batch 1 masked -> its output is zeros, so all its gradients are zeros.
    case(tensors, meta, "cross_d64_fully_masked", gen, 2, 5, 19, 1, 64, mask=padding_mask([11, 0], 19))
    # Odd head dim and token counts (register-block tails), three heads, explicit scale.
    case(tensors, meta, "cross_d13_odd", gen, 2, 9, 70, 3, 13, scale=0.75, mask=padding_mask([70, 41], 70))
    save_fixture("attention_grad", tensors, meta)


if __name__ == "__main__":
    main()
