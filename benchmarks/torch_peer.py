"""PyTorch 1.13 CPU peer for the op benchmarks: times the same shapes with 2 threads and prints JSON {op: ms}.

Run with Debian's python3 (python3-torch, libopenblas0-pthread). Each op is timed as the median of repeated runs
after warm-up, the way BenchmarkDotNet reports ours, so the ratio compares like with like. Inference ops run under
no_grad; the peers in TRAINING (a whole training step) run with autograd on.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)


def median_ms(fn, min_seconds=1.0, min_runs=5):
    for _ in range(2):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def sgemm():
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return lambda: a @ b


def conv2d():
    x, w, b = torch.randn(1, 320, 256, 16), torch.randn(320, 320, 3, 3), torch.randn(320)
    return lambda: F.conv2d(x, w, b, padding=1)


def group_norm_silu():
    x, g, b = torch.randn(1, 320, 256, 16), torch.randn(320), torch.randn(320)
    return lambda: F.silu(F.group_norm(x, 32, g, b, 1e-5))


def attention():
    q, k, v = (torch.randn(5, 4096, 64) for _ in range(3))
    scale = 64 ** -0.5
    return lambda: torch.softmax(q @ k.transpose(1, 2) * scale, dim=-1) @ v


def conv_transpose1d():
    x, w, b = torch.randn(1, 1024, 1024), torch.randn(1024, 512, 16), torch.randn(512)
    return lambda: F.conv_transpose1d(x, w, b, stride=5, padding=(16 - 5) // 2)


def stft():
    wave = torch.randn(1, 163840)
    window = torch.hann_window(1024, periodic=True)
    return lambda: torch.stft(wave, 1024, hop_length=160, win_length=1024, window=window, center=True,
                              pad_mode="reflect", return_complex=True).abs()


def adaptive_avg_pool():
    x = torch.randn(1, 4096, 320)
    return lambda: F.adaptive_avg_pool2d(x, (77, 1024))


TRAIN_LATENT_FRAMES = 64  # 2.56 s: 256 mel frames at 100 per second over the music VAE's x4
TRAIN_TEXT_TOKENS = 16
TRAIN_TIMESTEP = 500.0


def train_step():
    """One training step of the shipped tiny music UNet, as benchmarks/.../TrainStepBenchmark.cs: batch 1, fixed random
    latent, text states (all-ones mask) and image features of the image UNet's up-block attn2 tap shapes in the
    synapse; MSE against a random v target, backward, clip_grad_norm_(1.0), AdamW (lr 1e-4, weight decay 1e-2) over
    every UNet parameter (the reference's extra zero alphas outside the up-block attn2 get no gradient and are
    skipped, as torch skips any parameter without one)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from pipeline_peer import load_module, read_safetensors, unet_from_config
    with open(os.path.join(root, "weights", "model.json")) as f:
        config = json.load(f)
    music, image = config["music_unet"], config["image_unet"]
    unet = load_module(unet_from_config(music, True), read_safetensors(os.path.join(root, "weights", "music_unet.safetensors")),
                       "music_unet").train()
    bins = config["vocoder"]["mel_channels"] // config["music_vae"]["downsampling"]
    sample = torch.randn(1, music["in_channels"], TRAIN_LATENT_FRAMES, bins)
    target = torch.randn(sample.shape)
    timestep = torch.tensor([TRAIN_TIMESTEP])
    context = torch.randn(1, TRAIN_TEXT_TOKENS, music["cross_attention_dim"])
    mask = torch.ones(1, TRAIN_TEXT_TOKENS, dtype=torch.int32)
    levels = len(image["block_out_channels"])
    image_latent_side = config["image_size"] // config["image_vae"]["downsampling"]
    features = {}
    for block, kind in enumerate(image["up_block_types"]):
        if kind != "CrossAttnUpBlock2D":
            continue
        side = image_latent_side >> (levels - 1 - block)
        channels = image["block_out_channels"][levels - 1 - block]
        for attention in range(image["layers_per_block"] + 1):
            features[(block, attention)] = torch.randn(1, side * side, channels)
    parameters = list(unet.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=1e-4, weight_decay=1e-2)

    def step():
        optimizer.zero_grad(set_to_none=True)
        prediction, _ = unet(sample, timestep, context, mask, features)
        F.mse_loss(prediction, target).backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
    return step


PEERS = {f.__name__: f for f in (sgemm, conv2d, group_norm_silu, attention, conv_transpose1d, stft, adaptive_avg_pool,
                                 train_step)}
TRAINING = {"train_step"}

if __name__ == "__main__":
    names = sys.argv[1:] or list(PEERS)
    timings = {}
    for name in names:
        training = name in TRAINING
        with torch.set_grad_enabled(training):
            # A training step takes about a second here: time a few seconds of them, as BenchmarkDotNet's iterations do.
            timings[name] = median_ms(PEERS[name](), min_seconds=3.0 if training else 1.0)
    print(json.dumps(timings))
