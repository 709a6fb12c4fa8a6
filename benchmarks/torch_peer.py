"""PyTorch 1.13 CPU peer for the op benchmarks: times the same shapes with 2 threads and prints JSON {op: ms}.

Run with Debian's python3 (python3-torch, libopenblas0-pthread). Each op is timed as the median of repeated runs
after warm-up, the way BenchmarkDotNet reports ours, so the ratio compares like with like.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def median_ms(fn, min_seconds=1.0, min_runs=5):
    for _ in range(2):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def sgemm():
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return lambda: a @ b


def conv2d():
    x, w, b = torch.randn(1, 320, 256, 16), torch.randn(320, 320, 3, 3), torch.randn(320)
    return lambda: F.conv2d(x, w, b, padding=1)


def group_norm_silu():
    x, g, b = torch.randn(1, 320, 256, 16), torch.randn(320), torch.randn(320)
    return lambda: F.silu(F.group_norm(x, 32, g, b, 1e-5))


def attention():
    q, k, v = (torch.randn(5, 4096, 64) for _ in range(3))
    scale = 64 ** -0.5
    return lambda: torch.softmax(q @ k.transpose(1, 2) * scale, dim=-1) @ v


def conv_transpose1d():
    x, w, b = torch.randn(1, 1024, 1024), torch.randn(1024, 512, 16), torch.randn(512)
    return lambda: F.conv_transpose1d(x, w, b, stride=5, padding=(16 - 5) // 2)


def stft():
    wave = torch.randn(1, 163840)
    window = torch.hann_window(1024, periodic=True)
    return lambda: torch.stft(wave, 1024, hop_length=160, win_length=1024, window=window, center=True,
                              pad_mode="reflect", return_complex=True).abs()


def adaptive_avg_pool():
    x = torch.randn(1, 4096, 320)
    return lambda: F.adaptive_avg_pool2d(x, (77, 1024))


PEERS = {f.__name__: f for f in (sgemm, conv2d, group_norm_silu, attention, conv_transpose1d, stft, adaptive_avg_pool)}

if __name__ == "__main__":
    names = sys.argv[1:] or list(PEERS)
    with torch.no_grad():
        print(json.dumps({name: median_ms(PEERS[name]()) for name in names}))
