"""Fixtures for the fused attention op on 16-bit inputs: tests/fixtures/attention_f16.safetensors and
attention_bf16.safetensors (one file per dtype, same cases).

q, k and v are drawn in f32, rounded to the dtype and stored in it (the op's inputs). The expected output is torch's f32
attention of those rounded values (attention.reference with compute=torch.float32), stored as F32 unrounded: the tests'
tolerances cover the op's own rounding (weights and output in the 16-bit type). Rows whose keys are all masked are
zeros, as the op defines them. Layout as in attention.py.

Cases cross the tensor-core kernel's tile edges: 64 query rows per block, key tiles of 64 (head dim <= 64) or 32, head
dims padded to multiples of 16 (13, 40, 80 and 160 are padded; 64 is not).
"""
import torch

from attention import padding_mask, reference
from common import save_fixture, seeded


def case(tensors, meta, name, gen, dtype, batch, queries, keys, heads, head_dim, mask=None, scale=None,
         q_gain=1.0, offset=0.0):
    c = heads * head_dim
    q = (torch.randn(batch, queries, c, generator=gen) * q_gain + offset).to(dtype)
    k = (torch.randn(batch, keys, c, generator=gen) + offset).to(dtype)
    v = torch.randn(batch, keys, c, generator=gen).to(dtype)
    applied = scale if scale is not None else head_dim ** -0.5
    out = reference(q.float(), k.float(), v.float(), heads, mask, applied, compute=torch.float32)
    tensors.update({f"{name}.q": q, f"{name}.k": k, f"{name}.v": v, f"{name}.out": out})
    if mask is not None:
        tensors[f"{name}.mask"] = mask.to(torch.int32)
    meta[f"{name}.heads"] = heads
    meta[f"{name}.scale"] = "default" if scale is None else repr(float(scale))


def cases(dtype):
    gen = seeded(4321)
    tensors, meta = {}, {}
    # Self attention over two query blocks and two 64-key tiles (the second short), keys scattered-masked.
    scattered = (torch.rand(1, 70, generator=gen) > 0.3).to(torch.int32)
    case(tensors, meta, "self_d64", gen, dtype, 1, 70, 70, 1, 64, mask=scattered, q_gain=2.0)
    # Many queries over a few text tokens, two heads of dim 40 (padded to 48), T5-style padding.
    case(tensors, meta, "cross_d40", gen, dtype, 2, 33, 5, 2, 40, mask=padding_mask([3, 5], 5))
    # Few queries over 100 keys in 32-key tiles (dim 80); every key of batch 1 masked -> zeros, and batch 0's last
    # tile (keys 96-99) fully masked, which the kernel skips.
    case(tensors, meta, "cross_d80_fully_masked", gen, dtype, 2, 5, 100, 1, 80, mask=padding_mask([70, 0], 100),
         q_gain=2.0)
    # The UNet's largest head dim over padded keys.
    case(tensors, meta, "self_d160", gen, dtype, 1, 17, 17, 1, 160, mask=padding_mask([15], 17), q_gain=3.0)
    # Odd head dim (padded 13 -> 16), three heads, explicit scale, scores near 100 that overflow a naive exp.
    case(tensors, meta, "cross_d13_large_scores", gen, dtype, 2, 9, 70, 3, 13, scale=0.75, offset=3.0)
    return tensors, meta


def main():
    for suffix, dtype in (("f16", torch.float16), ("bf16", torch.bfloat16)):
        tensors, meta = cases(dtype)
        save_fixture(f"attention_{suffix}", tensors, meta)


if __name__ == "__main__":
    main()
