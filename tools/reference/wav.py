"""WAV fixtures written by independent encoders (Python's wave module, scipy.io.wavfile) with the expected samples."""
import os
import wave

import numpy as np
from scipy.io import wavfile

from common import FIXTURES, save_fixture

rng = np.random.default_rng(7)
out_dir = os.path.join(FIXTURES, "wav")
os.makedirs(out_dir, exist_ok=True)
expected = {}

# 16-bit PCM stereo at 22.05 kHz through the wave module.
pcm16 = rng.integers(-32768, 32767, size=(37, 2), dtype=np.int16)
with wave.open(os.path.join(out_dir, "pcm16_stereo.wav"), "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(22050)
    w.writeframes(pcm16.tobytes())
expected["pcm16_stereo.samples"] = (pcm16.astype(np.float64) / 32768.0).T.astype(np.float32)

# 8-bit unsigned PCM mono.
pcm8 = rng.integers(0, 256, size=29, dtype=np.uint8)
with wave.open(os.path.join(out_dir, "pcm8_mono.wav"), "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(1)
    w.setframerate(8000)
    w.writeframes(pcm8.tobytes())
expected["pcm8_mono.samples"] = ((pcm8.astype(np.float64) - 128) / 128.0)[None].astype(np.float32)

# 24-bit PCM mono: the wave module packs 3-byte little-endian samples.
pcm24 = rng.integers(-(1 << 23), (1 << 23) - 1, size=31, dtype=np.int32)
with wave.open(os.path.join(out_dir, "pcm24_mono.wav"), "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(3)
    w.setframerate(48000)
    w.writeframes(b"".join(int(v).to_bytes(3, "little", signed=True) for v in pcm24))
expected["pcm24_mono.samples"] = (pcm24.astype(np.float64) / (1 << 23))[None].astype(np.float32)

# 32-bit float stereo at 16 kHz through scipy (WAVE_FORMAT_IEEE_FLOAT).
f32 = rng.uniform(-1, 1, size=(41, 2)).astype(np.float32)
wavfile.write(os.path.join(out_dir, "float32_stereo.wav"), 16000, f32)
expected["float32_stereo.samples"] = f32.T.copy()

save_fixture("wav", expected, {"pcm16_stereo.rate": 22050, "pcm8_mono.rate": 8000, "pcm24_mono.rate": 48000,
                               "float32_stereo.rate": 16000})
