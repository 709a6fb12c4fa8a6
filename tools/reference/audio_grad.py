"""Gradient fixtures for the audio front end: |torch.stft| (center=True, reflect padding, periodic Hann window) back to
the waveform, and the vocoder's log-mel chain wave -> |stft| -> mel filterbank -> log(clamp(., min)) back to the
waveform and the filterbank; log-clamp alone on values below, at and above its floor (NaN included).

Each case stores the inputs, an output gradient dy and torch autograd's input gradients (grad_common.autograd, float64).
"""
import numpy as np
import torch

from audio import slaney_filterbank
from common import save_fixture, seeded
from grad_common import autograd


def stft_magnitude(wave, n_fft, hop, win):
    window = torch.hann_window(win, periodic=True, dtype=wave.dtype)
    return torch.stft(wave, n_fft, hop_length=hop, win_length=win, window=window, center=True, pad_mode="reflect",
                      return_complex=True).abs()


def wave_clear_of_zero(gen, samples, n_fft, hop, win):
    """Two waves of 0.5·N(0, 1) samples whose |X| all exceed 0.01: where |X| is tiny its phase X/|X| (the gradient's
    direction) is ill-conditioned in f32, so such draws are skipped."""
    while True:
        wave = 0.5 * torch.randn(2, samples, generator=gen)
        if stft_magnitude(wave.double(), n_fft, hop, win).min().item() >= 0.01:
            return wave


def stft_cases(gen):
    tensors, meta = {}, {}
    smallest = np.inf
    # (case, n_fft, hop, win_length, samples): the brief's n_fft 64 / hop 16 on short signals (both reflect pads
    # reaching the same samples when T <= n_fft + 1), a window shorter than n_fft, more frames than a 16-lane block,
    # complex sizes M with and without a final radix-2 pass, and the smallest transforms.
    for name, n_fft, hop, win, samples in [
        ("n64_h16", 64, 16, 64, 100),
        ("n64_short", 64, 16, 64, 40),
        ("n64_win48", 64, 13, 48, 77),
        ("n64_h4", 64, 4, 64, 90),
        ("n32_h8", 32, 8, 32, 50),
        ("n4_h1", 4, 1, 3, 9),
        ("n2_h1", 2, 1, 2, 5),
    ]:
        wave = wave_clear_of_zero(gen, samples, n_fft, hop, win)
        smallest = min(smallest, stft_magnitude(wave.double(), n_fft, hop, win).min().item())
        dy, (dwave,) = autograd(lambda w, n=n_fft, h=hop, l=win: stft_magnitude(w, n, h, l), [wave], gen)
        tensors.update({f"{name}.wave": wave, f"{name}.dy": dy, f"{name}.dwave": dwave})
        meta.update({f"{name}.n_fft": n_fft, f"{name}.hop": hop, f"{name}.win_length": win})
    print(f"smallest |X| in the stft cases: {smallest:.3g}")
    return tensors, meta


def mel_cases(gen):
    tensors, meta = {}, {}
    n_fft, hop, floor = 64, 16, 1e-5
    filterbank = torch.from_numpy(slaney_filterbank(16000, n_fft, 8, 0.0, 8000.0)).float()
    wave = wave_clear_of_zero(gen, 120, n_fft, hop, n_fft)

    def log_mel(w, fb):
        return torch.log(torch.clamp(torch.matmul(fb, stft_magnitude(w, n_fft, hop, n_fft)), min=floor))

    dy, (dwave, dfilterbank) = autograd(log_mel, [wave, filterbank], gen)
    tensors.update({"chain.wave": wave, "chain.filterbank": filterbank, "chain.dy": dy, "chain.dwave": dwave,
                    "chain.dfilterbank": dfilterbank})
    meta.update({"chain.n_fft": n_fft, "chain.hop": hop, "chain.min": floor})

    # The floor as the f32 op sees it, so that x equal to it passes the clamp as it does in f32.
    floor32 = float(np.float32(floor))
    x = torch.cat([torch.tensor([-1.0, 0.0, 1e-7, 9.99e-6, floor32, 1.001e-5, 2e-5, 1e-3, 1.0, 123.0, float("nan")]),
                   torch.exp(torch.randn(20, generator=gen) * 3)]).float()
    dy, (dx,) = autograd(lambda v: torch.log(torch.clamp(v, min=floor32)), [x], gen)
    tensors.update({"log_clamp.x": x, "log_clamp.dy": dy, "log_clamp.dx": dx})
    meta["log_clamp.min"] = floor
    return tensors, meta


if __name__ == "__main__":
    gen = seeded(51)
    save_fixture("stft_grad", *stft_cases(gen))
    save_fixture("mel_grad", *mel_cases(gen))
