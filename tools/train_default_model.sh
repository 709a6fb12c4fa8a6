#!/usr/bin/env bash
# Trains the default model on the synthetic MeLBench-style datasets with the engine's own `train` command, on the CPU,
# part by part, and resumes wherever it stopped: run it again after an interruption (Ctrl-C, a reboot, the end of a
# session) and every finished part is kept, an unfinished one continues from its checkpoint (bit-identical resume).
#
#   tools/train_default_model.sh [WORK_DIR]      (default: runs/default-model; needs ./melfusion's build)
#
# WORK_DIR/data-400   dataset synth --count 400 --seed 1: the reconstruction parts (music VAE, vocoder, image VAE)
#                     learn from it; they model sound and pictures, not captions, and 400 items suffice for them
# WORK_DIR/data       dataset synth --count 2000 --seed 1: the text encoder, the UNets and the attribute classifier,
#                     which overfit 320 training captions; its test split is the evaluation's
# WORK_DIR/<kind>/    one run per part: config.json, log.csv, loss.svg, checkpoint.safetensors, the exported part
# WORK_DIR/model/     the system assembled from the finished parts (untrained stand-ins for the others): the UNets
#                     train against the trained VAEs and text encoder found here; marked trained when all are done
# Order: the reconstruction parts, the text encoder, the image UNet, the music UNet (its synapse reads the image
# UNet), then the attribute classifier the evaluation uses.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(realpath -m "${1:-runs/default-model}")
data="$work/data"
small="$work/data-400"
model="$work/model"
cli=(dotnet src/MeLFusion.Cli/bin/Release/net10.0/melfusion.dll)
mkdir -p "$work"

[ -f "$small/train.jsonl" ] || "${cli[@]}" dataset synth --count 400 --seed 1 --out "$small" --overwrite
[ -f "$data/train.jsonl" ] || "${cli[@]}" dataset synth --count 2000 --seed 1 --out "$data" --overwrite

# The assembled system starts untrained (the tiny preset, seed 0) and takes each part as it finishes.
[ -f "$model/model.json" ] || "${cli[@]}" init --preset tiny --tokenizer weights/spiece.model --out "$model"

# train DATA KIND PART_FILE STEPS FLAGS...: runs (or resumes) one part on DATA's splits and installs it into the
# assembled system.
train() {
  local set=$1 kind=$2 part=$3 steps=$4
  shift 4
  local out="$work/$kind"
  if [ -f "$out/$part" ]; then
    echo "[train_default_model] $kind: done ($out/$part)"
  else
    local resume=()
    [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
    "${cli[@]}" train "$kind" --model "$model" --train "$set/train.jsonl" --validation "$set/validation.jsonl" \
      --out "$out" --steps "$steps" --seed 1 --log-every 10 --checkpoint-every 100 "${resume[@]}" "$@"
  fi
  # The part at its lowest validation loss goes into the system (the last step's weights when a run never validated).
  local chosen="$out/best.safetensors"
  [ -f "$chosen" ] || chosen="$out/$part"
  [ "$part" = attribute_classifier.safetensors ] || cp "$chosen" "$model/$part"
}

train "$small" music-vae music_vae.safetensors 3000 --from-scratch --batch-size 4 --clip-seconds 2.56 --lr 1e-3 --schedule Cosine --warmup 100 --validate-every 100
train "$small" vocoder vocoder.safetensors 4000 --from-scratch --batch-size 4 --lr 5e-4 --schedule Cosine --warmup 100 --validate-every 200
train "$small" image-vae image_vae.safetensors 2000 --from-scratch --batch-size 4 --clip-seconds 0.01 --lr 1e-3 --schedule Cosine --warmup 100 --validate-every 200
train "$data" text-encoder text_encoder.safetensors 2500 --from-scratch --batch-size 16 --lr 1e-3 --schedule Cosine --warmup 50 --validate-every 100
train "$data" t2i-unet image_unet.safetensors 3500 --from-scratch --batch-size 4 --clip-seconds 0.01 --lr 3e-4 --schedule Cosine --warmup 100 --validate-every 250 --feature-cache "$work/feature-cache"
train "$data" t2m-unet music_unet.safetensors 4000 --from-scratch --synapse-alpha-init 2 --batch-size 4 --clip-seconds 2.56 --lr 3e-4 --schedule Cosine --warmup 100 --validate-every 250 --gradient-checkpointing --feature-cache "$work/feature-cache"
train "$data" attribute-classifier attribute_classifier.safetensors 1500 --batch-size 16 --lr 1e-3 --schedule Cosine --validate-every 100
sed -i 's/"trained": false/"trained": true/' "$model/model.json"
echo "[train_default_model] every part is trained: $model"
