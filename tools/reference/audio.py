"""Fixtures for the audio front end: STFT magnitude, Slaney mel filterbanks, mel projection and log-clamp.

Expected STFTs come from torch.stft in float64 (so the fixture carries essentially no error of its own) and are
stored as float32. librosa is not installed here, so the Slaney filterbank reference is librosa.filters.mel
(htk=False, norm='slaney') transcribed line by line into numpy (librosa 0.10 filters.mel / mel_frequencies /
hz_to_mel / mel_to_hz); it is used instead of librosa when librosa is importable.
"""
import numpy as np
import torch

from common import save_fixture, seeded

try:
    import librosa
except ImportError:
    librosa = None


def stft_magnitude(wave, n_fft, hop, win):
    window = torch.hann_window(win, periodic=True, dtype=torch.float64)
    spec = torch.stft(wave.double(), n_fft, hop_length=hop, win_length=win, window=window, center=True,
                      pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
    return spec.abs()


def hz_to_mel_slaney(freqs):
    freqs = np.asanyarray(freqs, dtype=np.float64)
    f_min, f_sp = 0.0, 200.0 / 3
    mels = (freqs - f_min) / f_sp
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - f_min) / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = freqs >= min_log_hz
    mels = np.where(log_t, min_log_mel + np.log(np.maximum(freqs, 1e-10) / min_log_hz) / logstep, mels)
    return mels


def mel_to_hz_slaney(mels):
    mels = np.asanyarray(mels, dtype=np.float64)
    f_min, f_sp = 0.0, 200.0 / 3
    freqs = f_min + f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = (min_log_hz - f_min) / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    return np.where(log_t, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


def slaney_filterbank(sr, n_fft, n_mels, fmin, fmax):
    if librosa is not None:
        return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
                                   norm="slaney").astype(np.float64)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz_slaney(np.linspace(hz_to_mel_slaney(fmin), hz_to_mel_slaney(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, np.newaxis]


def stft_fixture():
    gen = seeded(1)
    tensors, meta = {}, {}
    # (case, n_fft, hop, win_length, samples): every complex size M = n_fft/2 from 1 to 512 (odd and even log2 M,
    # i.e. with and without the final radix-2 pass), windows shorter than n_fft (odd and even padding), hops that do
    # and do not divide T, signals barely longer than the reflect pad, frame counts below and above a 16-lane block,
    # and blocks of 4, 8 and 16 frames that need no padding (the transposing fast loader), also for tiny n_fft.
    cases = [
        ("n2", 2, 1, 2, 7),
        ("n4", 4, 3, 3, 9),
        ("n4_long", 4, 1, 4, 40),
        ("n8", 8, 2, 8, 13),
        ("n16", 16, 5, 11, 37),
        ("n32", 32, 8, 32, 17),
        ("n64", 64, 16, 48, 301),
        ("n128", 128, 7, 128, 515),
        ("n256", 256, 64, 200, 2201),
        ("n512", 512, 128, 512, 2047),
        ("n1024", 1024, 160, 1024, 3201),
    ]
    worst_f32 = 0.0
    for name, n_fft, hop, win, samples in cases:
        wave = 0.5 * torch.randn(2, samples, generator=gen)
        expected = stft_magnitude(wave, n_fft, hop, win)
        f32 = torch.stft(wave, n_fft, hop_length=hop, win_length=win, window=torch.hann_window(win), center=True,
                         pad_mode="reflect", return_complex=True).abs()
        worst_f32 = max(worst_f32, ((f32.double() - expected).abs() / np.sqrt(n_fft)).max().item())
        tensors[f"{name}.wave"] = wave
        tensors[f"{name}.magnitude"] = expected.float()
        meta.update({f"{name}.n_fft": n_fft, f"{name}.hop": hop, f"{name}.win_length": win})
    print(f"torch float32 stft: worst |error| / sqrt(n_fft) = {worst_f32:.3g}")
    save_fixture("stft", tensors, meta)


def mel_fixture():
    gen = seeded(2)
    tensors, meta = {}, {}

    # Filterbanks: the AudioLDM/Tango front end, and a different rate/size/band with fmin > 0 and fmax < Nyquist.
    banks = {"audioldm": (16000, 1024, 64, 0.0, 8000.0), "small": (22050, 512, 40, 30.0, 9000.0)}
    for name, (sr, n_fft, n_mels, fmin, fmax) in banks.items():
        tensors[f"fb_{name}.weights"] = slaney_filterbank(sr, n_fft, n_mels, fmin, fmax)
        meta.update({f"fb_{name}.sample_rate": sr, f"fb_{name}.n_fft": n_fft, f"fb_{name}.n_mels": n_mels,
                     f"fb_{name}.fmin": fmin, f"fb_{name}.fmax": fmax})

    # Mel projection alone: non-negative magnitudes [2, 257, 13] through the small bank (fb_small.weights as f32).
    fb_small = torch.from_numpy(tensors["fb_small.weights"]).float().double()
    magnitude = (torch.randn(2, 257, 13, generator=gen, dtype=torch.float64).abs() * 3).float()
    tensors["project.magnitude"] = magnitude
    tensors["project.mel"] = torch.matmul(fb_small, magnitude.double())

    # Log-clamp on values below, at and above the floor (including 0 and negatives), odd length.
    values = torch.cat([torch.tensor([-1.0, 0.0, 1e-7, 9.99e-6, 1e-5, 1.001e-5, 2e-5, 1e-3, 1.0, 123.0]),
                        torch.exp(torch.randn(993, generator=gen) * 6)]).float()
    for name, floor in (("log_default", 1e-5), ("log_1e-3", 1e-3)):
        tensors[f"{name}.x"] = values
        tensors[f"{name}.y"] = torch.log(torch.clamp(values.double(), min=floor))
        meta[f"{name}.min"] = floor

    # The whole AudioLDM chain: wave -> |stft| -> mel -> log(clamp(., 1e-5)).
    sr, n_fft, n_mels, fmin, fmax = banks["audioldm"]
    wave = 0.5 * torch.randn(2, 2401, generator=gen)
    mel = torch.matmul(torch.from_numpy(slaney_filterbank(sr, n_fft, n_mels, fmin, fmax)),
                       stft_magnitude(wave, n_fft, 160, n_fft))
    tensors["chain.wave"] = wave
    tensors["chain.log_mel"] = torch.log(torch.clamp(mel, min=1e-5))
    meta.update({"chain.hop": 160})
    save_fixture("mel", tensors, meta)


if __name__ == "__main__":
    stft_fixture()
    mel_fixture()
