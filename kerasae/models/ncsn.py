"""`ncsn`: a noise-conditional score network (Song and Ermon, "Generative Modeling by
Estimating Gradients of the Data Distribution", NeurIPS 2019), with the fixes of Song and
Ermon 2020 ("Improved Techniques for Training Score-Based Generative Models") that help.

One network estimates the score s(x, sigma) = grad log p_sigma(x) of the data blurred by
Gaussian noise, at `noise_levels` = L geometric sigmas from `sigma_max` down to
`sigma_min`. The defaults are the 2019 paper's for [0, 1] images (L = 10, 1.0 to 0.01):
noise of std 1 has norm 28 on 28x28 images, more than the largest distance between two
Fashion-MNIST images (about 21). The 2020 paper's technique 1 would take sigma_max = 21 per
pixel with many more levels; sigma_max = 10 with L = 15 sampled far worse here (bags only),
so the defaults stay. The network is a small U-Net given the noise level (log sigma
through a small embedding added in every residual block); it predicts the noise
eps_hat(x~, sigma), and s = -eps_hat / sigma: the 2020 paper's output scaling s(x)/sigma
(technique 3) on top of the conditioning. Its weights are averaged (technique 5, `ema`).
Training is denoising score matching weighted by lambda(sigma) = sigma^2, a sigma index
drawn uniformly per example:

    x~ = x + sigma z,   sigma^2 || s(x~, sigma) + z / sigma ||^2 = || eps_hat - z ||^2,

logged as its mean over pixels (the paper's objective up to a constant factor; 1 means
predicting no noise). Validation cycles through the levels with fixed noise, so its loss
is comparable from epoch to epoch. `kerasae.samplers.annealed_langevin` runs their
Algorithm 1 on `score_at`.

It stays an autoencoder, at the smallest noise level: the encoder is the U-Net's
contracting path at sigma_min, and its code is the input followed by every coarser
feature map the expanding path needs (the skips), flattened; the decoder is the
expanding path, returning the denoised x - sigma_min eps_hat (Tweedie's estimate of the
clean image). So `latent_dim` is not free: it is set to the code's size (recorded in the
config), and `encode`, `decode`, `reconstruct`, `score` and the exported encoder and
decoder all work at sigma_min; the other levels are reached through `score_at` only.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.models.base import Autoencoder
from kerasae.models.registry import register_model


class NoiseLevel(layers.Layer):
    """A (batch, 1) column of log(sigma) shaped after the batch of its input: the fixed
    noise level of the encoder and decoder that `encode`/`decode` and the export use."""

    def __init__(self, sigma, **kwargs):
        super().__init__(**kwargs)
        self.sigma = float(sigma)

    def call(self, x):
        first = ops.reshape(x, (-1, math.prod(x.shape[1:])))[:, :1]
        return ops.zeros_like(first) + math.log(self.sigma)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


class LevelEmbedding(layers.Layer):
    """Sinusoidal features of log(sigma) (fixed frequencies), for the Dense layers that
    follow: a plain scalar input is a poor conditioning signal for a ReLU-family MLP."""

    def __init__(self, size=16, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, c):
        freqs = ops.convert_to_tensor(np.geomspace(0.25, 8.0, self.size // 2), c.dtype)
        angles = c * freqs[None, :]
        return ops.concatenate([c, ops.sin(angles), ops.cos(angles)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _norm(h, name):
    # GroupNorm halves the CPU throughput but pays for itself: without it the same U-Net's
    # validation loss was 0.55 after a 20k-image epoch, with it 0.30 (Fashion-MNIST)
    return layers.GroupNormalization(groups=math.gcd(8, h.shape[-1]), name=name)(h)


def _res_block(h, emb, filters, name):
    """Pre-activation residual block; the level embedding is added between the convs."""
    skip = h if h.shape[-1] == filters else layers.Conv2D(filters, 1, name=f"{name}_skip")(h)
    a = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv0")(
        ops.silu(_norm(h, f"{name}_norm0"))
    )
    a = a + layers.Reshape((1, 1, filters))(layers.Dense(filters, name=f"{name}_emb")(emb))
    a = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(
        ops.silu(_norm(a, f"{name}_norm1"))
    )
    return skip + a


def _embed(c, width, prefix):
    e = layers.Dense(width, activation="silu", name=f"{prefix}_emb0")(LevelEmbedding()(c))
    return layers.Dense(width, activation="silu", name=f"{prefix}_emb1")(e)


def code_shapes(input_shape, filters):
    """Shapes of the code's parts: the input, then one feature map per strided stage."""
    shapes, (h, w) = [tuple(input_shape)], input_shape[:2]
    for f in filters[1:]:
        h, w = -(-h // 2), -(-w // 2)
        shapes.append((h, w, f))
    return shapes


def build_unet(input_shape, filters, embed_width=64):
    """(contracting path: [x, log sigma] -> code, expanding path: [code, log sigma] -> eps_hat)."""
    shapes = code_shapes(input_shape, filters)
    x = keras.Input(shape=shapes[0], name="x")
    c = keras.Input(shape=(1,), name="log_sigma")
    emb = _embed(c, embed_width, "enc")
    h = layers.Conv2D(filters[0], 3, padding="same", name="enc_in")(x)
    h = _res_block(h, emb, filters[0], "enc0")
    parts = [x]
    for i, f in enumerate(filters[1:], start=1):
        h = layers.Conv2D(f, 3, strides=2, padding="same", name=f"enc_down{i}")(h)
        h = _res_block(h, emb, f, f"enc{i}")
        parts.append(h)
    code = layers.Concatenate(name="code")([layers.Flatten()(p) for p in parts])
    contracting = keras.Model([x, c], code, name="contracting")

    z = keras.Input(shape=(code.shape[-1],), name="z")
    c2 = keras.Input(shape=(1,), name="log_sigma")
    emb = _embed(c2, embed_width, "dec")
    offsets = np.cumsum([0] + [math.prod(s) for s in shapes])
    pieces = [
        layers.Reshape(s)(z[:, int(a) : int(b)])
        for s, a, b in zip(shapes, offsets[:-1], offsets[1:])
    ]
    h = _res_block(pieces[-1], emb, filters[-1], "dec_mid")
    for i in range(len(filters) - 2, -1, -1):
        target = shapes[i]
        h = layers.UpSampling2D(2, name=f"dec_up{i}")(h)
        h = h[:, : target[0], : target[1], :]  # odd sizes: 2 * ceil(n / 2) > n
        h = layers.Conv2D(filters[i], 3, padding="same", name=f"dec_upconv{i}")(h)
        h = layers.Concatenate(name=f"dec_cat{i}")([h, pieces[i]])
        h = _res_block(h, emb, filters[i], f"dec{i}")
    eps = layers.Conv2D(shapes[0][-1], 3, padding="same", name="dec_eps")(
        ops.silu(_norm(h, "dec_out_norm"))
    )
    expanding = keras.Model([z, c2], eps, name="expanding")
    return contracting, expanding


@register_model("ncsn")
class NCSN(Autoencoder):
    """Noise-conditional score network (Song and Ermon 2019): annealed Langevin samples.

    At sigma_min it is a denoising autoencoder; `kerasae sample RUN --langevin --anneal`
    draws from it."""

    tiny_config = {"filters": (8, 16), "noise_levels": 4, "sigma_min": 0.05}
    # with a cosine decay to 0 (`--lr-schedule cosine`): see the module docstring
    default_learning_rate = 2e-3
    score_description = "squared error of the denoised input at sigma_min"

    fixed_params = ("loss",)  # denoising score matching, weighted by sigma^2

    def __init__(
        self,
        *,
        latent_dim=None,
        filters=(16, 32, 64),
        noise_levels=10,
        sigma_max=1.0,
        sigma_min=0.01,
        embed_width=64,
        ema=0.999,
        **kwargs,
    ):
        """`filters`: the U-Net's widths, one per resolution (the first at full size, each
        next one after a stride-2 convolution). `latent_dim` is ignored: the code's size
        follows from `input_shape` and `filters` (the input plus each coarser feature map).
        `ema`: the decay of an exponential moving average of the weights, which replaces
        them when `fit` ends (Song and Ermon 2020, technique 5); 0 turns it off."""
        data_shape = tuple(int(d) for d in self.arguments["input_shape"])
        if len(data_shape) != 3:
            raise KerasaeError(
                f"ncsn needs image inputs (height, width, channels), got input_shape {data_shape}"
            )
        filters = tuple(int(f) for f in filters)
        if not filters or min(filters) <= 0:
            raise KerasaeError(f"filters must be positive widths, got {filters!r}")
        if isinstance(noise_levels, bool) or not isinstance(noise_levels, int) or noise_levels < 2:
            raise KerasaeError(
                f"noise_levels must be an integer of at least 2, got {noise_levels!r}"
            )
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
            raise KerasaeError(f"ema must be a decay in [0, 1), got {ema!r}")
        if not 0 < sigma_min < sigma_max:
            raise KerasaeError(
                f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min!r} "
                f"and sigma_max={sigma_max!r}"
            )
        size = sum(math.prod(s) for s in code_shapes(data_shape, filters))
        super().__init__(latent_dim=size, **kwargs)
        self.record_config(latent_dim=size, filters=filters)
        self.filters = filters
        self.noise_levels = int(noise_levels)
        self.sigma_max, self.sigma_min = float(sigma_max), float(sigma_min)
        self.noise_seed = keras.random.SeedGenerator()
        self.contracting, self.expanding = build_unet(data_shape, filters, int(embed_width))
        x = keras.Input(shape=data_shape, name="x")
        encoder = keras.Model(x, self.contracting([x, NoiseLevel(sigma_min)(x)]), name="encoder")
        z = keras.Input(shape=(size,), name="z")
        eps = self.expanding([z, NoiseLevel(sigma_min)(z)])
        x_in = layers.Reshape(data_shape)(z[:, : math.prod(data_shape)])
        x_hat = layers.Activation("linear", dtype="float32", name="x_hat")(
            x_in - self.sigma_min * eps
        )
        self.set_networks(encoder, keras.Model(z, x_hat, name="decoder"))
        self.ema = float(ema)
        if self.ema:  # zero-started and bias-corrected as Adam's moments are, so a short
            # fit averages the weights it visited rather than the initial ones
            self.ema_steps = self.add_weight(
                shape=(), initializer="zeros", trainable=False, name="ema_steps"
            )
            self.ema_weights = [
                self.add_weight(
                    shape=v.shape, initializer="zeros", trainable=False, name=f"ema_{i}"
                )
                for i, v in enumerate(self.network_weights())
            ]

    def network_weights(self):
        """The trainable weights of the two paths (what the moving average follows)."""
        return self.contracting.trainable_weights + self.expanding.trainable_weights

    def after_step(self, x, outputs):
        if not self.ema:
            return
        self.ema_steps.assign_add(1.0)
        for avg, w in zip(self.ema_weights, self.network_weights()):
            avg.assign(self.ema * avg + (1.0 - self.ema) * w)

    def apply_ema(self):
        """Replace the weights with their moving average (done when `fit` ends)."""
        steps = float(self.ema_steps.numpy()) if self.ema else 0.0
        if steps:
            correction = 1.0 - self.ema**steps
            for avg, w in zip(self.ema_weights, self.network_weights()):
                w.assign(avg / correction)

    def fit(self, *args, **kwargs):
        """Keras `fit`, then the weights' moving average in place of the last weights."""
        history = super().fit(*args, **kwargs)
        self.apply_ema()
        return history

    @property
    def sigmas(self):
        """The L noise levels, largest first (numpy float32)."""
        return np.geomspace(self.sigma_max, self.sigma_min, self.noise_levels).astype("float32")

    @property
    def score_sigma(self):
        """sigma_min: `reconstruct` is the denoiser there, as a single-sigma dae's is."""
        return self.sigma_min

    def predict_noise(self, x, sigma, training=False):
        """eps_hat(x, sigma) for a batch tensor `x`; `sigma` a scalar or one per example."""
        x = ops.cast(x, "float32")
        sigma = ops.cast(sigma, "float32")
        c = ops.log(ops.reshape(sigma, (-1, 1)) + ops.zeros((ops.shape(x)[0], 1)))
        return self.expanding([self.contracting([x, c], training=training), c], training=training)

    def score_at(self, x, sigma):
        """s(x, sigma) = -eps_hat(x, sigma) / sigma: the score of the data blurred by
        N(0, sigma^2) noise, for a batch tensor `x` and a scalar `sigma` (traceable)."""
        return -self.predict_noise(x, sigma) / ops.cast(sigma, "float32")

    def compute_losses(self, x, training=False):
        x = ops.cast(x, "float32")
        n = ops.shape(x)[0]
        if training:
            index = keras.random.randint((n,), 0, self.noise_levels, seed=self.noise_seed)
            noise = keras.random.normal(ops.shape(x), seed=self.noise_seed)
        else:  # every level in turn, the same noise each time: a comparable figure
            index = ops.mod(ops.arange(n), self.noise_levels)
            noise = keras.random.normal(ops.shape(x), seed=1234)
        sigma = ops.take(ops.convert_to_tensor(self.sigmas), index)
        x_noisy = x + ops.reshape(sigma, (-1, 1, 1, 1)) * noise
        eps = self.predict_noise(x_noisy, sigma, training=training)
        return {"loss": ops.mean(ops.square(eps - noise))}

    def sample(self, n, seed=None):
        raise NotGenerativeError(self.not_generative_reason())

    def not_generative_reason(self):
        return (
            "model 'ncsn' is not generative through a prior over its codes; draw "
            "samples by annealed Langevin dynamics: `kerasae sample RUN --langevin "
            "--anneal` or kerasae.samplers.annealed_langevin(model, n)"
        )
