#!/usr/bin/env bash
# Op benchmarks beside PyTorch (2 threads) in one run; prints the ratio table. Exit status 1 if any op misses its target.
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 benchmarks/compare.py "$@"
