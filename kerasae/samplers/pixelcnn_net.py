"""The PixelCNN network of the `pixelcnn` sampler: masked convolutions (van den Oord,
Kalchbrenner and Kavukcuoglu, "Pixel Recurrent Neural Networks", 2016, section 3.4 and
figure 5) over a vq_vae's grid of code indices.
"""

import functools

import keras
import numpy as np


def causal_mask(kernel_size, mask_type):
    """(k, k) float32: 1 where the kernel may look. Rows above the centre, and the centre
    row left of the centre, are before the position in raster order; mask "B" also keeps
    the centre (a later layer's own position holds features of the earlier ones only)."""
    k, c = int(kernel_size), int(kernel_size) // 2
    rows, cols = np.mgrid[:k, :k]
    seen = (rows < c) | ((rows == c) & (cols < c))
    if mask_type == "B":
        seen |= (rows == c) & (cols == c)
    return seen.astype("float32")


@functools.cache
def masked_conv2d():
    """The MaskedConv2D layer class (made on first use, so that importing kerasae.samplers,
    which imports this module to register it, does not import Keras)."""

    class MaskedConv2D(keras.layers.Layer):
        """A "same" 2-D convolution whose kernel is multiplied by a causal mask (A or B).
        Rebuilt from the sampler's options on load (weights only), so no get_config."""

        def __init__(self, filters, kernel_size, mask_type, seed=None, **kwargs):
            super().__init__(**kwargs)
            if mask_type not in ("A", "B"):
                raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
            self.filters, self.kernel_size = int(filters), int(kernel_size)
            self.mask_type, self.seed = mask_type, seed
            self.mask = causal_mask(kernel_size, mask_type)[:, :, None, None]

        def build(self, input_shape):
            k = self.kernel_size
            self.kernel = self.add_weight(
                shape=(k, k, int(input_shape[-1]), self.filters),
                name="kernel",
                initializer=keras.initializers.GlorotUniform(seed=self.seed),
            )
            self.bias = self.add_weight(shape=(self.filters,), name="bias", initializer="zeros")

        def call(self, x):
            return keras.ops.conv(x, self.kernel * self.mask, padding="same") + self.bias

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], self.filters)

    return MaskedConv2D


def first_kernel_size(grid, largest=7):
    """The mask-A kernel: the paper's 7x7, or less on a small grid (odd, and just enough to
    reach every earlier position: 2 * max(h, w) - 1)."""
    return min(largest, 2 * max(grid) - 1)


def build_network(grid, num_embeddings, filters=64, blocks=3, seed=0):
    """indices (n, h, w) int32 -> logits (n, h, w, K): embedding, mask-A conv, `blocks`
    residual mask-B blocks (ReLU, 3x3 mask-B conv, ReLU, 1x1 conv, add), ReLU, 1x1 conv,
    ReLU, 1x1 conv to K logits."""
    masked = masked_conv2d()
    h, w = grid
    first = int(seed or 0) % 2**20 * 1000
    seeds = iter(range(first, first + 1000))  # one fixed seed per layer
    glorot = lambda: keras.initializers.GlorotUniform(seed=next(seeds))  # noqa: E731
    indices = keras.Input(shape=(h, w), dtype="int32", name="indices")
    x = keras.layers.Embedding(
        num_embeddings,
        filters,
        name="embedding",
        embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=next(seeds)),
    )(indices)
    x = masked(filters, first_kernel_size(grid), "A", seed=next(seeds), name="mask_a")(x)
    for b in range(blocks):
        y = keras.layers.ReLU()(x)
        y = masked(filters, 3, "B", seed=next(seeds), name=f"block{b}_mask_b")(y)
        y = keras.layers.ReLU()(y)
        y = keras.layers.Conv2D(filters, 1, kernel_initializer=glorot(), name=f"block{b}_1x1")(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(
        filters, 1, activation="relu", kernel_initializer=glorot(), name="head"
    )(x)
    logits = keras.layers.Conv2D(num_embeddings, 1, kernel_initializer=glorot(), name="logits")(x)
    return keras.Model(indices, logits, name="pixelcnn")
