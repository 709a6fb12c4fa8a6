#!/usr/bin/python3
"""Prints a markdown table of the runs under a train_default_model.sh work directory: for each part its data, steps,
batch, learning rate, wall time (summed over resumed segments of log.csv), last training loss and validation loss.

    /usr/bin/python3 tools/summarize_training.py WORK_DIR
"""
import csv
import json
import os
import sys

PARTS = ["music-vae", "vocoder", "image-vae", "text-encoder", "t2i-unet", "t2m-unet", "attribute-classifier"]


def summarize(run):
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    # Each resume restarts the seconds column: a segment ends where it drops.
    wall, previous = 0.0, 0.0
    for row in rows:
        seconds = float(row["seconds"])
        if seconds < previous:
            wall += previous
        previous = seconds
    wall += previous
    losses = [float(r["loss"]) for r in rows][-10:]
    validations = [(int(r["step"]), float(r["validation_loss"])) for r in rows if r["validation_loss"]]
    best = min(validations, key=lambda v: v[1]) if validations else None
    o = config["optimizer"]
    data = os.path.basename(os.path.dirname(os.path.realpath(config["train_manifest"])))
    clip = "" if config["kind"] in ("image-vae", "t2i-unet", "text-encoder") else f' × {config["clip_seconds"]:g} s'
    return (f'| {config["kind"]} | {data} | {rows[-1]["step"]} | {config["batch_size"]}{clip} | '
            f'{o["learning_rate"]:g} {o["schedule"].lower()} | {wall / 60:.1f} min | {sum(losses) / len(losses):.4f} | '
            + (f'{validations[-1][1]:.4f} (best {best[1]:.4f} at {best[0]})' if best else "-") + " |")


def main():
    work = sys.argv[1]
    print("| part | data | steps | batch | peak lr, schedule | wall time | training loss (last 10 logged) | validation loss |")
    print("|---|---|---:|---|---|---:|---:|---|")
    for part in PARTS:
        if os.path.exists(os.path.join(work, part, "log.csv")):
            print(summarize(os.path.join(work, part)))


if __name__ == "__main__":
    main()
