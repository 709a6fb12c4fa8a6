"""PyTorch 1.13 baseline for AttentionBenchmark (run with /usr/bin/python3; 2 threads like the 2-core target box).

Same shapes as benchmarks/MeLFusion.Native.Benchmarks/AttentionBenchmark.cs: 5 heads of dim 64, 4096 query tokens,
self attention (4096 keys) and cross attention (77 keys, 20 real). Unfused per head: softmax(q·kᵀ·scale + bias)·v.
Prints min and median of the timed runs in milliseconds.
"""
import sys
import time

import torch

TOKENS, HEADS, HEAD_DIM, TEXT_TOKENS, REAL_TEXT_TOKENS = 4096, 5, 64, 77, 20


def attention(q, k, v, bias=None):
    scale = HEAD_DIM ** -0.5
    outs = []
    for h in range(HEADS):
        cols = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
        scores = q[:, cols] @ k[:, cols].T * scale
        if bias is not None:
            scores = scores + bias
        outs.append(torch.softmax(scores, dim=-1) @ v[:, cols])
    return torch.cat(outs, dim=-1)


def time_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[0], times[len(times) // 2]


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    channels = HEADS * HEAD_DIM
    q, k, v = (torch.randn(TOKENS, channels) for _ in range(3))
    text_k, text_v = torch.randn(TEXT_TOKENS, channels), torch.randn(TEXT_TOKENS, channels)
    bias = torch.zeros(TEXT_TOKENS)
    bias[REAL_TEXT_TOKENS:] = float("-inf")
    for name, fn in (("SelfAttention4096", lambda: attention(q, k, v)),
                     ("CrossAttention4096x77", lambda: attention(q, text_k, text_v, bias))):
        best, median = time_ms(fn, runs)
        print(f"torch {name}: min {best:.1f} ms, median {median:.1f} ms")


if __name__ == "__main__":
    main()
