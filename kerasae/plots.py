"""PNG figures with matplotlib (headless): image grids, shared by callbacks and the CLI."""

import os

import numpy as np

from kerasae.io import atomic_path


def _pyplot():
    import matplotlib  # slow to import: only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # slow to import: only when a figure is drawn

    return plt


MIN_CELL_PX = 64  # small images (8x8 digits) are upscaled to at least this per cell


def grid_image(images, rows=None, pad=1, scale=1):
    """Tile (N, H, W[, C]) images in [0, 1] into one (rows*H, cols*W[, C]) array, each
    image enlarged `scale` times (nearest neighbour, so pixels stay sharp)."""
    images = np.clip(np.asarray(images, dtype="float32"), 0.0, 1.0)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
    n = len(images)
    rows = rows or int(np.ceil(np.sqrt(n)))
    cols = int(np.ceil(n / rows))
    h, w = images.shape[1:3]
    canvas = np.ones(
        (rows * (h + pad) - pad, cols * (w + pad) - pad, *images.shape[3:]), dtype="float32"
    )
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return canvas


def is_image_shape(shape):
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3))


def cell_scale(image_shape):
    """How many times to enlarge an image so a grid cell is at least MIN_CELL_PX wide."""
    return max(1, int(np.ceil(MIN_CELL_PX / max(image_shape[:2]))))


def save_grid(images, path, rows=None, title=None, row_labels=None, dpi=100):
    """Write a grid of images (or, for tabular data, a heat map of the rows) as a PNG,
    drawn one canvas pixel to one PNG pixel; `row_labels` name the rows (a traversal's
    latent dimensions)."""
    plt = _pyplot()
    images = np.asarray(images)
    scale, pad = 1, 1
    if is_image_shape(images.shape[1:]):
        scale = cell_scale(images.shape[1:])
        pad = max(1, scale // 4)
        canvas = grid_image(images, rows=rows, pad=pad, scale=scale)
    else:  # tabular rows: one row of pixels each, stretched to a readable size
        canvas = np.clip(images.reshape(len(images), -1), 0, 1)
        canvas = canvas.repeat(max(1, 8 // max(1, canvas.shape[1] // 32)), axis=1).repeat(4, 0)
    height, width = canvas.shape[:2]
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(
        canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels is not None:
        cell = images.shape[1] * scale + pad
        ax.set_yticks(
            [r * cell + (cell - pad) / 2 for r in range(len(row_labels))],
            labels=list(row_labels),
            fontsize=9,
        )
        ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=9)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=dpi)
    plt.close(fig)
    return path


def save_figure(fig, path, dpi=100):
    """Write a matplotlib figure as a PNG atomically and close it; returns the path."""
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=dpi)
    plt.close(fig)
    return path
