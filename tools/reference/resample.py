"""Polyphase resampling fixtures: scipy.signal.resample_poly (Kaiser window, beta 5, zero padding) at the rate pairs
the training loader meets, on float32-representable random inputs, computed in float64.

Case names are "r<from>_<to>"; the expected output is scipy's float64 result rounded to float32.
"""
import math

import numpy as np
from scipy.signal import resample_poly

from common import save_fixture

rng = np.random.default_rng(11)
tensors, meta = {}, {}
# (from rate, to rate, input length): common rates, a length that is not a multiple of the ratio, and an input
# shorter than the filter's half-length (441 * 10 taps at 44.1 kHz).
for source, target, length in [(44100, 16000, 4417), (48000, 16000, 4800), (22050, 16000, 2208), (11025, 16000, 1103),
                               (8000, 16000, 800), (32000, 16000, 1001), (24000, 16000, 1200), (44100, 16000, 50)]:
    g = math.gcd(source, target)
    up, down = target // g, source // g
    # A band-limited part (tones below and above the new Nyquist frequency) plus white noise, in [-1, 1].
    t = np.arange(length) / source
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 9000 * t) + 0.3 * rng.uniform(-1, 1, length)
    x = x.astype(np.float32)
    y = resample_poly(x.astype(np.float64), up, down, window=("kaiser", 5.0))
    name = f"r{source}_{target}_{length}"
    tensors[name + ".input"] = x
    tensors[name + ".output"] = y.astype(np.float32)
    meta[name + ".from"] = source
    meta[name + ".to"] = target

save_fixture("resample", tensors, meta)
