#!/usr/bin/env bash
# Writes weights/: the tiny MeLFusion configuration, randomly initialised by the engine itself (./melfusion init),
# with a SentencePiece tokenizer trained on music-caption text by Debian's python3-sentencepiece.
# This is the stand-in default model until a trained one replaces it; generate says so when it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 tools/train_tokenizer.py --vocab 1000 --out "$work/spiece.model"
./melfusion init --preset tiny --tokenizer "$work/spiece.model" --out weights --seed 0
