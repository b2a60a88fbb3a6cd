"""A PNG grid of generated examples with Pillow (no matplotlib in a service image)."""

import math

import numpy as np


def grid(images, pad=1, min_tile=32):
    """(N, H, W[, C]) in [0, 1] -> one uint8 canvas; tiny tiles are upscaled to be visible.

    Non-image rows (tabular data) become one row of grey pixels each."""
    x = np.clip(np.nan_to_num(np.asarray(images, dtype=np.float32)), 0.0, 1.0)
    if x.ndim == 2 or (x.ndim == 4 and x.shape[-1] not in (1, 3)) or x.ndim > 4:
        return (x.reshape(len(x), -1) * 255).round().astype(np.uint8)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    n, h, w = x.shape[:3]
    zoom = max(1, math.ceil(min_tile / max(h, w)))
    x = x.repeat(zoom, axis=1).repeat(zoom, axis=2)
    h, w = h * zoom, w * zoom
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.ones(
        (rows * (h + pad) - pad, cols * (w + pad) - pad, *x.shape[3:]), dtype=np.float32
    )
    for i, img in enumerate(x):
        r, c = divmod(i, cols)
        canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return (canvas * 255).round().astype(np.uint8)


def save_png(images, path):
    from PIL import Image

    Image.fromarray(grid(images)).save(path, format="PNG")
    return path
