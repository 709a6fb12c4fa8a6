#!/usr/bin/env bash
# Trains the default model on the synthetic MeLBench-style dataset with the engine's own `train` command, on the CPU,
# part by part, and resumes wherever it stopped: run it again after an interruption (Ctrl-C, a reboot, the end of a
# session) and every finished part is kept, an unfinished one continues from its checkpoint (bit-identical resume).
#
#   tools/train_default_model.sh [WORK_DIR]      (default: runs/default-model; needs ./melfusion's build)
#
# WORK_DIR/data       the dataset (dataset synth --count 400 --seed 1)
# WORK_DIR/<kind>/    one run per part: config.json, log.csv, loss.svg, checkpoint.safetensors, the exported part
# WORK_DIR/model/     the system assembled from the finished parts (untrained stand-ins for the others): the UNets
#                     train against the trained VAEs and text encoder found here
# Order: the parts that only need data (music VAE, vocoder, text encoder, image VAE), then the UNets, then the
# attribute classifier the evaluation uses. When every part is done, WORK_DIR/model is the trained default model.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-runs/default-model}")
data="$work/data"
model="$work/model"
cli=(dotnet src/MeLFusion.Cli/bin/Release/net10.0/melfusion.dll)
mkdir -p "$work"

if [ ! -f "$data/train.jsonl" ]; then
  "${cli[@]}" dataset synth --count 400 --seed 1 --out "$data" --overwrite
fi

# The assembled system starts as the untrained weights/ and takes each part as it finishes.
if [ ! -f "$model/model.json" ]; then
  mkdir -p "$model"
  cp weights/model.json weights/spiece.model weights/*.safetensors "$model/"
fi

# train KIND PART_FILE STEPS FLAGS...: runs (or resumes) one part and installs it into the assembled system.
train() {
  local kind=$1 part=$2 steps=$3
  shift 3
  local out="$work/$kind"
  if [ -f "$out/$part" ]; then
    echo "[train_default_model] $kind: done ($out/$part)"
  else
    local resume=()
    [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
    "${cli[@]}" train "$kind" --model "$model" --train "$data/train.jsonl" --validation "$data/validation.jsonl" \
      --out "$out" --steps "$steps" --seed 1 --log-every 10 --checkpoint-every 100 "${resume[@]}" "$@"
  fi
  # The part at its lowest validation loss goes into the system (the last step's weights when a run never validated).
  local chosen="$out/best.safetensors"
  [ -f "$chosen" ] || chosen="$out/$part"
  [ "$part" = attribute_classifier.safetensors ] || cp "$chosen" "$model/$part"
}

train music-vae music_vae.safetensors 3000 --from-scratch --batch-size 4 --clip-seconds 2.56 --lr 1e-3 --schedule Cosine --warmup 100 --validate-every 100
train vocoder vocoder.safetensors 4000 --from-scratch --batch-size 4 --lr 5e-4 --schedule Cosine --warmup 100 --validate-every 200
train text-encoder text_encoder.safetensors 1500 --from-scratch --batch-size 16 --lr 1e-3 --schedule Cosine --warmup 50 --validate-every 100
train image-vae image_vae.safetensors 2000 --from-scratch --batch-size 4 --clip-seconds 0.01 --lr 1e-3 --schedule Cosine --warmup 100 --validate-every 200
train t2i-unet image_unet.safetensors 3000 --from-scratch --batch-size 4 --clip-seconds 0.01 --lr 3e-4 --schedule Cosine --warmup 100 --validate-every 200
train t2m-unet music_unet.safetensors 3000 --from-scratch --batch-size 2 --clip-seconds 2.56 --lr 3e-4 --schedule Cosine --warmup 100 --validate-every 200 --gradient-checkpointing
train attribute-classifier attribute_classifier.safetensors 600 --batch-size 16 --lr 1e-3 --schedule Cosine --validate-every 50
echo "[train_default_model] every part is trained: $model"
