"""Image fixtures encoded by Pillow, with the RGB pixels Pillow decodes (alpha composited onto black, as libpng's
simplified API does without a background colour)."""
import os

import numpy as np
from PIL import Image

from common import FIXTURES, save_fixture

rng = np.random.default_rng(11)
out_dir = os.path.join(FIXTURES, "images")
os.makedirs(out_dir, exist_ok=True)
expected = {}


def smooth(h, w, c):
    """A gradient plus noise: compresses like a photo, and odd sizes hit every row/column edge case."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 127 // max(w + h - 2, 1))], -1)
    return np.clip(base[..., :c] + rng.integers(-20, 20, size=(h, w, c)), 0, 255).astype(np.uint8)


def add(name, image, **save_args):
    path = os.path.join(out_dir, name)
    image.save(path, **save_args)
    decoded = Image.open(path)
    if decoded.mode in ("RGBA", "LA", "PA") or (decoded.mode == "P" and "transparency" in decoded.info):
        rgba = np.asarray(decoded.convert("RGBA")).astype(np.float64)
        rgb = np.round(rgba[..., :3] * rgba[..., 3:] / 255.0)
    else:
        rgb = np.asarray(decoded.convert("RGB"))
    expected[name.replace(".", "_") + ".rgb"] = np.asarray(rgb, dtype=np.int32)


add("rgb.png", Image.fromarray(smooth(13, 17, 3)))
add("gray.png", Image.fromarray(smooth(9, 5, 1)[..., 0]))
add("palette.png", Image.fromarray(smooth(8, 11, 3)).quantize(16))
opaque = smooth(7, 6, 3)
alpha = np.full((7, 6, 1), 255, np.uint8)
add("rgba_opaque.png", Image.fromarray(np.concatenate([opaque, alpha], -1)))
add("photo.jpg", Image.fromarray(smooth(24, 31, 3)), quality=90)
add("gray.jpg", Image.fromarray(smooth(16, 16, 1)[..., 0]), quality=95)
add("progressive.jpg", Image.fromarray(smooth(20, 9, 3)), quality=85, progressive=True)
save_fixture("images", expected)
