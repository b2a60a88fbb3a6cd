"""PNG figures with matplotlib (headless): image grids, shared by callbacks and the CLI."""
import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grid_image(images, rows=None, pad=1):
    """Tile (N, H, W[, C]) images in [0, 1] into one (rows*H, cols*W[, C]) array."""
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    n = len(images)
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    h, w = images.shape[1:3]
    canvas = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, *images.shape[3:]),
                     dtype="float32")
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = img
    return canvas


def is_image_shape(shape):
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))


def save_grid(images, path, rows=None, title=None):
    """Write a grid of images (or, for tabular data, a heat map of the rows) as a PNG."""
    plt = _pyplot()
    images = np.asarray(images)
    if is_image_shape(images.shape[1:]):
        canvas = grid_image(images, rows=rows)
    else:  # tabular rows: one row of pixels each
        canvas = np.clip(images.reshape(len(images), -1), 0, 1)
    scale = max(2.0, min(12.0, canvas.shape[1] / 40))
    fig, ax = plt.subplots(figsize=(scale, scale * canvas.shape[0] / canvas.shape[1] + 0.4))
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    from kerasae.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=100)
    plt.close(fig)
    return path


def save_figure(fig, path, dpi=100):
    """Write a matplotlib figure as a PNG atomically and close it; returns the path."""
    from kerasae.io import atomic_path

    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=dpi)
    plt.close(fig)
    return path
