#!/usr/bin/python3
"""Times one whole generation on `cpu` beside the same model in PyTorch and prints our time / PyTorch time per stage.

Ours: `melfusion generate --timings-json` (needs the Release build: dotnet build MeLFusion.Native.sln -c Release,
and the native library from cmake). PyTorch: benchmarks/pipeline_peer.py (torch 1.13, 2 threads, the same weights
directory). Each side runs --runs times, every run in a fresh process (so both include their warm-up: our plan
compilation, PyTorch's first-call allocations); the table shows per-stage medians and the largest peak RSS.
Exit status 1 if the total ratio is above --target (0.5: our whole generation at most half of PyTorch's time).

    benchmarks/pipeline_compare.py [--steps 25] [--seconds 10.24] [--image examples/jazz_lounge.png] [--runs 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, "src", "MeLFusion.Cli", "bin", "Release", "net10.0", "melfusion.dll")
PEER = os.path.join(ROOT, "benchmarks", "pipeline_peer.py")
README_PROMPT = "bebop jazz with a clarinet melody and upright bass"


def run_side(command, runs, scratch, name):
    results = []
    for run in range(runs):
        path = os.path.join(scratch, f"{name}{run}.json")
        print(f"[{name} {run + 1}/{runs}] {' '.join(command[:3])} ...", file=sys.stderr, flush=True)
        subprocess.run(command + ["--timings-json", path], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        with open(path) as f:
            results.append(json.load(f))
    return results


def median_of(results, key):
    return statistics.median(r[key] for r in results)


def stage_median(results, stage):
    values = [r["stages"][stage] for r in results if stage in r["stages"]]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", default=README_PROMPT)
    parser.add_argument("--image", default=os.path.join("examples", "jazz_lounge.png"),
                        help="image steering the music ('' for text only)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=10.24)
    parser.add_argument("--runs", type=int, default=1, help="fresh-process runs per side (medians are shown)")
    parser.add_argument("--target", type=float, default=0.5, help="largest acceptable total ratio (ours / PyTorch)")
    args = parser.parse_args()
    if not os.path.exists(CLI):
        sys.exit(f"{CLI} is missing: build first (dotnet build MeLFusion.Native.sln -c Release)")

    request = ["--text", args.text, "--steps", str(args.steps), "--seconds", str(args.seconds)]
    if args.image:
        request += ["--image", args.image]
    with tempfile.TemporaryDirectory() as scratch:
        ours = run_side(["dotnet", CLI, "generate", *request, "--device", "cpu", "--synapse", "Paper", "--scheduler", "Ddpm",
                         "--out", os.path.join(scratch, "music.wav")], args.runs, scratch, "ours")
        torch = run_side(["/usr/bin/python3", PEER, *request, "--threads", "2"], args.runs, scratch, "pytorch")

    stages = list(ours[0]["stages"])
    stages += [s for s in torch[0]["stages"] if s not in stages]
    rows = [(s, stage_median(ours, s), stage_median(torch, s)) for s in stages]
    rows.insert(stages.index("diffusion") + 1 if "diffusion" in stages else len(rows),
                ("  one UNet step (diffusion / steps)", median_of(ours, "unet_step"), median_of(torch, "unet_step")))
    rows.append(("total", median_of(ours, "total"), median_of(torch, "total")))

    def cell(value):
        return f"{value:10.3f}" if value is not None else f"{'-':>10s}"

    print(f"\nwhole generation on cpu: {args.steps} steps, {args.seconds} s, image {args.image or 'none'}, "
          f"paper synapse; {args.runs} run(s) per side, medians")
    print(f"{'stage':36s} {'ours (s)':>10s} {'PyTorch (s)':>11s} {'ratio':>7s}")
    for stage, mine, theirs in rows:
        ratio = f"{mine / theirs:7.2f}" if mine is not None and theirs else f"{'-':>7s}"
        print(f"{stage:36s} {cell(mine)} {cell(theirs):>11s} {ratio}")
    ours_peak = max(r["peak_rss_mib"] for r in ours)
    torch_peak = max(r["peak_rss_mib"] for r in torch)
    print(f"{'peak RSS (MiB)':36s} {ours_peak:10.0f} {torch_peak:11.0f} {ours_peak / torch_peak:7.2f}")
    total_ratio = median_of(ours, "total") / median_of(torch, "total")
    verdict = "meets" if total_ratio <= args.target else "MISSES"
    print(f"\ntotal ratio {total_ratio:.2f}: {verdict} the target (at most {args.target})")
    return 0 if total_ratio <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
