#!/usr/bin/env bash
# Op benchmarks beside PyTorch (2 threads) in one run; prints the ratio table. Exit status 1 if any op misses its target.
#   benchmarks/compare.sh [op ...]            the op benchmarks (benchmarks/compare.py)
#   benchmarks/compare.sh pipeline [opts]     one whole generation per stage (benchmarks/pipeline_compare.py)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = pipeline ]; then
  shift
  exec /usr/bin/python3 benchmarks/pipeline_compare.py "$@"
fi
exec /usr/bin/python3 benchmarks/compare.py "$@"
