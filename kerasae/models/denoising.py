"""`dae`: the denoising autoencoder (Vincent et al., ICML 2008; JMLR 2010).

A DAE reconstructs the clean input from a corrupted copy, so it may be overcomplete: the
noise, not the bottleneck, keeps it from learning the identity. Corruption is applied only
when training; `denoise(x)` and `score(x)` see the input as given.

Noise types (`noise_level` = l): `gaussian` adds N(0, l^2) (l times the data range) and
clips to the data range; `masking` zeroes exactly round(l * D) of the D inputs of each
example, chosen at random (Vincent 2008); `salt_and_pepper` sets exactly round(l * D) inputs
to the minimum or maximum with probability 1/2 each (Vincent 2010).

The conv architecture's code is a dense vector by default; `code="spatial"` makes it a
grid of latent_dim / (h*w) channels at the last strided convolution's resolution (see
`kerasae.nets`), which keeps fine detail: the better denoiser on images.

For Gaussian noise of std sigma, (r(x) - x) / sigma^2 estimates grad log p(x) (Alain and
Bengio, JMLR 2014): `score_sigma` exposes sigma, `kerasae.samplers.langevin` runs Langevin on it.

`sdae` (kerasae.models.sdae) stacks them.
"""

import math

import keras
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.networks import NetworkAutoencoder
from kerasae.models.registry import register_model

NOISES = ("gaussian", "masking", "salt_and_pepper")


def corrupt(x, noise, level, seed=None, low=0.0, high=1.0, clip=True):
    """A corrupted copy of the batch `x` (a tensor); see the module docstring for the types."""
    x = ops.cast(x, "float32")
    if noise == "gaussian":
        out = x + (level * (high - low)) * keras.random.normal(ops.shape(x), seed=seed)
        return ops.clip(out, low, high) if clip else out
    size = math.prod(x.shape[1:])  # static: the feature shape is known, the batch may not be
    flat = ops.reshape(x, (-1, size))
    count = int(round(level * size))
    # rank of an independent uniform draw per input: the `count` lowest are corrupted,
    # which picks exactly `count` inputs per example, uniformly at random
    ranks = ops.argsort(
        ops.argsort(keras.random.uniform(ops.shape(flat), seed=seed), axis=-1), axis=-1
    )
    hit = ops.cast(ranks < count, "float32")
    if noise == "masking":
        replacement = ops.zeros_like(flat)
    else:  # salt_and_pepper
        coin = ops.cast(keras.random.uniform(ops.shape(flat), seed=seed) < 0.5, "float32")
        replacement = low + (high - low) * coin
    return ops.reshape(flat * (1.0 - hit) + replacement * hit, ops.shape(x))


def check_noise(noise, level):
    if noise not in NOISES:
        raise KerasaeError(f"noise must be one of {', '.join(NOISES)}, got {noise!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or level <= 0:
        raise KerasaeError(f"noise_level must be a positive number, got {level!r}")
    if noise != "gaussian" and level >= 1:
        raise KerasaeError(
            f"noise_level is the fraction of inputs {noise} corrupts; it must be "
            f"below 1, got {level!r}"
        )


@register_model("dae")
class DAE(NetworkAutoencoder):
    """Denoising autoencoder: reconstructs clean inputs from corrupted ones (mlp or conv)."""

    tiny_config = {"latent_dim": 4, "hidden_units": (16,), "filters": (4, 8), "noise_level": 0.2}

    def __init__(self, *, noise="gaussian", noise_level=0.3, code="dense", **kwargs):
        """`filters` and `kernel_size` shape the conv architecture (conv_ae's defaults, and
        its Adam 2e-3), `hidden_units` the mlp one. `code="spatial"` (conv only) makes the
        code a grid of latent_dim / (h*w) channels instead of a dense vector (see
        `kerasae.nets`): the better denoiser, with latent_dim a multiple of h*w (49 for
        28x28 images and two strided convolutions; 3136 = 64 channels)."""
        super().__init__(**kwargs)
        self.resolve_networks(base=64, code=code)  # filters None: by the image size
        if self.architecture == "conv":  # Fashion-MNIST pilot, sigma 0.3: +6.35 dB vs +5.65 dB
            self.default_learning_rate = 2e-3  # at filters (32, 64) and 1e-3
        check_noise(noise, noise_level)
        self.noise = noise
        self.noise_level = float(noise_level)
        self.code = code
        self.noise_seed = keras.random.SeedGenerator()
        self.set_networks(self.build_encoder(code=code), self.build_decoder(code=code))

    @property
    def score_sigma(self):
        """sigma of the Gaussian corruption (the score estimate's scale); None for other noise."""
        return self.noise_level if self.noise == "gaussian" else None

    def corrupt(self, x):
        """The training corruption applied to a batch (a tensor or array) of clean inputs."""
        return corrupt(x, self.noise, self.noise_level, seed=self.noise_seed)

    def compute_losses(self, x, training=False):
        x_in = self.corrupt(x) if training else x
        return {"loss": self.reconstruction_loss(x, self(x_in, training=training))}

    def denoise(self, x, batch_size=256):
        """The reconstruction of (noisy) inputs: r(x), with no corruption added."""
        return self.reconstruct(x, batch_size=batch_size)
