#!/usr/bin/env bash
# Op benchmarks beside PyTorch (2 threads) in one run; prints the ratio table. Exit status 1 if any op misses its target.
#   benchmarks/compare.sh [op ...]            the op benchmarks (benchmarks/compare.py)
#   benchmarks/compare.sh pipeline [opts]     one whole generation per stage (benchmarks/pipeline_compare.py)
#   benchmarks/compare.sh cuda [bdn args]     the CUDA kernel suite on the GPU (CudaKernelBenchmarks): time, achieved
#                                             GB/s or TFLOP/s and fraction of the device's peak; without a GPU it says
#                                             why and times nothing
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = pipeline ]; then
  shift
  exec /usr/bin/python3 benchmarks/pipeline_compare.py "$@"
fi
if [ "${1:-}" = cuda ]; then
  shift
  exec dotnet run -c Release --no-build --project benchmarks/MeLFusion.Native.Benchmarks -- \
    --filter '*CudaKernelBenchmarks*' --artifacts build/bench/cuda "$@"
fi
exec /usr/bin/python3 benchmarks/compare.py "$@"
