"""Image grids written while training: reconstructions, prior samples, latent traversals.

Traversals: Higgins et al., "beta-VAE" (ICLR 2017), figure 1 style. Grids go to PNG files
under the run's `samples/` folder and, given a TensorBoard log folder, to TensorBoard as
images.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.plots import grid_image, is_image_shape, save_grid


def traversal_codes(z_ref, steps=9, span=3.0, dims=None):
    """(len(dims) * steps, latent_dim) codes: row i varies dimension dims[i] over
    [-span, span], every other coordinate stays at `z_ref`."""
    z_ref = np.asarray(z_ref, dtype="float32").reshape(-1)
    dims = range(len(z_ref)) if dims is None else dims
    values = np.linspace(-span, span, steps, dtype="float32")
    codes = np.repeat(z_ref[None], len(dims) * steps, axis=0)
    for row, d in enumerate(dims):
        codes[row * steps : (row + 1) * steps, d] = values
    return codes


def traversal_images(model, z_ref=None, steps=9, span=3.0, dims=None):
    """Decoded traversal grid: (rows, images); z_ref defaults to the prior mean (zeros)."""
    if z_ref is None:
        z_ref = np.zeros(model.latent_dim, dtype="float32")
    dims = list(range(model.latent_dim)) if dims is None else list(dims)
    return len(dims), model.decode(traversal_codes(z_ref, steps, span, dims))


class _GridCallback(keras.callbacks.Callback):
    """Writes one PNG every `every` epochs (default: about five per run) and after the
    last epoch, plus a TensorBoard image when `log_dir` is given."""

    stem = "grid"
    row_labels = None  # names of the grid's rows, where they mean something

    def __init__(self, folder, every=None, log_dir=None):
        super().__init__()
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every <= 0
        ):
            raise KerasaeError(f"every must be a positive integer, got {every!r}")
        self.folder, self.every, self.log_dir = folder, every, log_dir
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.every is None:  # about five grids per run, whatever its length
            self.every = max(1, (self.params or {}).get("epochs", 5) // 5)

    def images(self):
        """(images, rows, title) for the current model."""
        raise NotImplementedError

    def on_epoch_end(self, epoch, logs=None):
        last = epoch + 1 == (self.params or {}).get("epochs")
        if (epoch + 1) % self.every and not last:
            return

        images, rows, title = self.images()
        path = os.path.join(self.folder, f"{self.stem}_epoch{epoch + 1:03d}.png")
        save_grid(
            images,
            path,
            rows=rows,
            title=f"{title}, epoch {epoch + 1}",
            row_labels=self.row_labels,
        )
        if self.log_dir:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
            canvas = grid_image(images, rows=rows)
            canvas = canvas[..., None] if canvas.ndim == 2 else canvas
            with self._writer.as_default():
                tf.summary.image(self.stem, canvas[None], step=epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class SampleGrid(_GridCallback):
    """A grid of `n` decoded prior samples (fixed seed: the same draws every time)."""

    stem = "samples"

    def __init__(self, folder, every=None, n=64, seed=0, log_dir=None):
        super().__init__(folder, every, log_dir)
        self.n, self.seed = n, seed

    def images(self):
        return self.model.sample(self.n, seed=self.seed), None, f"{self.n} prior samples"


class ReconstructionGrid(_GridCallback):
    """Fixed inputs in odd rows, their reconstructions in the row below."""

    stem = "reconstructions"

    def __init__(self, x, folder, every=None, n=8, log_dir=None):
        super().__init__(folder, every, log_dir)
        self.x = np.asarray(x[:n], dtype="float32")

    def images(self):
        pairs = np.concatenate([self.x, self.model.reconstruct(self.x)])
        return pairs, 2, "inputs (top) and reconstructions (bottom)"


class LatentTraversal(_GridCallback):
    """One row per latent dimension, swept over [-span, span] around a reference code
    (the posterior mean of `x_ref`, or the prior mean when none is given)."""

    stem = "traversal"

    def __init__(
        self, folder, every=None, x_ref=None, steps=9, span=3.0, max_dims=16, log_dir=None
    ):
        super().__init__(folder, every, log_dir)
        self.x_ref = None if x_ref is None else np.asarray(x_ref[:1], dtype="float32")
        self.steps, self.span, self.max_dims = steps, span, max_dims

    def images(self):
        z_ref = None if self.x_ref is None else self.model.encode(self.x_ref)[0]
        dims = range(min(self.model.latent_dim, self.max_dims))
        self.row_labels = [f"z{d}" for d in dims]
        rows, images = traversal_images(self.model, z_ref, self.steps, self.span, dims)
        return images, rows, f"latent traversal over [-{self.span:g}, {self.span:g}]"


GRID_EXAMPLES = 8  # test examples a reconstruction grid shows


def default_grid_callbacks(model, run_dir, data):
    """The grids `kerasae train` writes for any model on image data: reconstructions, and
    prior samples plus a latent traversal where the model is generative. `data`: a kerasae
    dataset (only the first test examples are read, `data.head`) or an array of examples."""
    if not is_image_shape(tuple(model.data_shape)):
        return []
    x_test = (
        data.head("test", GRID_EXAMPLES)
        if hasattr(data, "head")
        else np.asarray(data[:GRID_EXAMPLES], dtype="float32")
    )
    folder = os.path.join(run_dir, "samples")
    log_dir = os.path.join(run_dir, "tensorboard")
    out = [ReconstructionGrid(x_test, folder, log_dir=log_dir)]
    if model.generative:
        out += [
            SampleGrid(folder, log_dir=log_dir),
            LatentTraversal(folder, x_ref=x_test, log_dir=log_dir),
        ]
    return out
