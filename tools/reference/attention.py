"""Fixtures for the fused attention op (tests/fixtures/attention.safetensors).

Reference: per head, softmax(Q·Kᵀ·scale + mask_bias)·V with torch.matmul and torch.nn.functional.softmax in float64,
where mask_bias is -inf for masked keys. Rows whose keys are all masked come out NaN in torch; the op defines them as
zeros, so the expected output is zeroed there.

Inputs are rounded to float16 values and stored as F16 (exact in f32) to keep the file small; expected outputs are F32.
Layout is the op's: q [B, N, H*D], k and v [B, M, H*D], mask [B, M] (1 = attend, 0 = masked), out [B, N, H*D].
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def reference(q, k, v, heads, mask, scale, compute=torch.float64):
    """The op's output in f32, computed in `compute` precision from q, k, v as given."""
    b, n, c = q.shape
    m = k.shape[1]
    d = c // heads
    qh = q.to(compute).view(b, n, heads, d).transpose(1, 2)
    kh = k.to(compute).view(b, m, heads, d).transpose(1, 2)
    vh = v.to(compute).view(b, m, heads, d).transpose(1, 2)
    scores = torch.matmul(qh, kh.transpose(-1, -2)) * scale
    if mask is not None:
        bias = torch.zeros(b, m, dtype=compute).masked_fill(mask == 0, float("-inf"))
        scores = scores + bias[:, None, None, :]
    out = torch.matmul(F.softmax(scores, dim=-1), vh)
    out = torch.nan_to_num(out, nan=0.0)  # fully masked rows: zeros by definition
    return out.transpose(1, 2).reshape(b, n, c).float()


def case(tensors, meta, name, gen, batch, queries, keys, heads, head_dim, mask=None, scale=None,
         q_gain=1.0, offset=0.0):
    c = heads * head_dim
    q = (torch.randn(batch, queries, c, generator=gen) * q_gain + offset).half()
    k = (torch.randn(batch, keys, c, generator=gen) + offset).half()
    v = torch.randn(batch, keys, c, generator=gen).half()
    applied = scale if scale is not None else head_dim ** -0.5
    out = reference(q.float(), k.float(), v.float(), heads, mask, applied)
    tensors.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v, f"{name}.out": out})
    if mask is not None:
        tensors[f"{name}.mask"] = mask.to(torch.int32)
    meta[f"{name}.heads"] = heads
    meta[f"{name}.scale"] = "default" if scale is None else repr(float(scale))


def padding_mask(lengths, keys):
    return (torch.arange(keys)[None, :] < torch.tensor(lengths)[:, None]).to(torch.int32)


def main():
    gen = seeded(1234)
    tensors, meta = {}, {}
    # Self attention spanning two query tiles and two key tiles; keys partly masked (padding and scattered).
    scattered = (torch.rand(2, 77, generator=gen) > 0.3).to(torch.int32)
    scattered[0, 60:] = 0
    case(tensors, meta, "self_d64", gen, 2, 77, 77, 1, 64, mask=scattered, q_gain=2.0)
    # Cross attention of many queries over a few text tokens, two heads, T5-style padding.
    case(tensors, meta, "cross_d40", gen, 2, 45, 5, 2, 40, mask=padding_mask([3, 5], 5))
    # Few queries over 130 keys (three key tiles); every key of batch 1 masked -> zeros.
    case(tensors, meta, "cross_d80_fully_masked", gen, 2, 5, 130, 1, 80, mask=padding_mask([77, 0], 130), q_gain=2.0)
    # Large head dim, single query, no mask.
    case(tensors, meta, "cross_d160_one_query", gen, 2, 1, 5, 1, 160)
    # Large head dim over two query and two key tiles (GPU kernels tile D=160 at 16x16), padded keys.
    case(tensors, meta, "self_d160", gen, 1, 17, 17, 1, 160, mask=padding_mask([15], 17), q_gain=3.0)
    # Odd head dim and key count (register-block tails), explicit scale, scores near 100 that overflow a naive exp.
    case(tensors, meta, "cross_d13_large_scores", gen, 2, 9, 70, 3, 13, scale=0.75, offset=3.0)
    save_fixture("attention", tensors, meta)


if __name__ == "__main__":
    main()
