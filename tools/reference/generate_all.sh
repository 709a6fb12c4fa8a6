#!/usr/bin/env bash
# Regenerates every fixture in tests/fixtures with Debian's python3 and python3-torch 1.13 (CPU).
set -euo pipefail
cd "$(dirname "$0")"
for script in [a-z]*.py; do
  [ "$script" = common.py ] && continue
  /usr/bin/python3 "$script"
done
