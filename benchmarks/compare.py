"""Runs each op benchmark (BenchmarkDotNet) and its PyTorch peer back to back, then prints our time / PyTorch time.

Usage: benchmarks/compare.py [op ...]   (ops: see OPS; default all). Needs a Release build of the benchmarks.
"""
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.join(ROOT, "benchmarks", "MeLFusion.Native.Benchmarks")
ARTIFACTS = os.path.join(ROOT, "build", "bench")

# peer name -> (BenchmarkDotNet type.method, target ratio, shape described)
OPS = {
    "sgemm": ("GemmBenchmark.Sgemm2048", 1.0, "2048x2048x2048 f32"),
    "conv2d": ("Conv2dBenchmark.Conv2d320", 1.0, "320->320 3x3 pad 1 on 256x16"),
    "group_norm_silu": ("GroupNormBenchmark.GroupNormSilu320", 0.5, "32 groups + SiLU on 320x256x16"),
    "attention": ("AttentionBenchmark.SelfAttention4096", 0.5, "5 heads x 4096 tokens x 64"),
    "conv_transpose1d": ("ConvTranspose1dBenchmark.ConvTranspose1d1024", 1.0, "1024->512 k16 s5 on 1024 frames"),
    "stft": ("StftBenchmark.Stft1024", 1.0, "|STFT| of 10.24 s @16 kHz, n_fft 1024, hop 160"),
    "adaptive_avg_pool": ("AdaptiveAvgPoolBenchmark.Pool4096To77", 1.0, "[4096,320] -> [77,1024]"),
    "train_step": ("TrainStepBenchmark.TinyMusicUNetStep", 1.0,
                   "tiny music UNet + synapse alphas, batch 1, latent [8,64,16], 16 tokens: fwd + MSE + bwd + clipped AdamW"),
}

# Ops that process training samples: peer name -> samples per run, for the throughput table.
SAMPLES_PER_RUN = {"train_step": 1}


def ours_ms(benchmark):
    out = os.path.join(ARTIFACTS, benchmark)
    subprocess.run(["dotnet", "run", "-c", "Release", "--no-build", "--project", PROJECT, "--",
                    "--filter", "*" + benchmark, "--exporters", "json", "--artifacts", out],
                   check=True, stdout=subprocess.DEVNULL)
    reports = glob.glob(os.path.join(out, "results", "*-report-full*.json"))
    for report in reports:
        for b in json.load(open(report))["Benchmarks"]:
            if b["FullName"].endswith(benchmark):
                return b["Statistics"]["Median"] / 1e6
    raise SystemExit(f"no BenchmarkDotNet result for {benchmark} in {out}")


def torch_ms(name):
    result = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "benchmarks", "torch_peer.py"), name],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout)[name]


def main():
    names = sys.argv[1:] or list(OPS)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise SystemExit(f"unknown op(s) {unknown}; choose from {list(OPS)}")
    rows = []
    for name in names:
        benchmark, target, shape = OPS[name]
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        ours, peer = ours_ms(benchmark), torch_ms(name)
        rows.append((name, shape, ours, peer, ours / peer, target))
    print(f"\n| op | shape | ours (ms) | PyTorch 1.13 (ms) | ratio | target | |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, shape, ours, peer, ratio, target in rows:
        verdict = "ok" if ratio <= target else "SLOWER THAN TARGET"
        print(f"| {name} | {shape} | {ours:.3f} | {peer:.3f} | {ratio:.2f} | <= {target} | {verdict} |")
    throughput = [(name, SAMPLES_PER_RUN[name], ours, peer) for name, _, ours, peer, _, _ in rows if name in SAMPLES_PER_RUN]
    if throughput:
        print("\n| op | ours (samples/s) | PyTorch 1.13 (samples/s) |")
        print("|---|---:|---:|")
        for name, samples, ours, peer in throughput:
            print(f"| {name} | {samples * 1e3 / ours:.2f} | {samples * 1e3 / peer:.2f} |")
    return 0 if all(r[4] <= r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
