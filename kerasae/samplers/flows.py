"""The `maf` and `iaf` latent samplers: normalising flows fitted to a trained model's codes.

MAF: Papamakarios, Pavlakou and Murray, "Masked Autoregressive Flow for Density Estimation"
(NeurIPS 2017). IAF: Kingma, Salimans, Jozefowicz, Chen, Sutskever and Welling, "Improved
Variational Inference with Inverse Autoregressive Flow" (NeurIPS 2016), used here as a
density model of the codes. Both stack `n_blocks` MADE blocks (`kerasae.nets.made`, Germain
et al. 2015), their autoregressive orders reversed from one block to the next, over the
standardised codes, and are fitted by maximum likelihood (Adam, `epochs` passes, seeded):
log p(z) = log N(u; 0, I) + log |det du/dz| with u the flow's noise for the code z.

- maf: a block maps x to u_i = (x_i - m_i(x_<i)) exp(-s_i(x_<i)): the likelihood is one
  pass; sampling inverts it one dimension at a time (x_i = u_i exp(s_i) + m_i, d passes).
- iaf: a block maps u to x_i = u_i exp(s_i(u_<i)) + m_i(u_<i): sampling is one pass; the
  likelihood needs the sequential inverse (d passes), also while training.

The sequential direction is the fixed-point iteration x <- u exp(s(x)) + m(x) from x = 0,
exact after d = latent_dim iterations (position i is final once x_<i is): unrolled in the
graph, so sampler.onnx (u ~ N(0, I) of latent_dim -> z, the manifest's "network" kind) holds
every pass and the un-standardisation, and kerasae-runtime draws the same codes. Codes wider
than MAX_DIM are refused (d passes per block). Departures from the papers: no batch
normalisation between blocks (MAF's), the affine form (not IAF's gated sigmoid update), the
log-scales soft-clamped to +-LOG_SCALE_BOUND (c tanh(s / c)), no early stopping.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasae.distribute import precision_policy
from kerasae.errors import KerasaeError
from kerasae.nets.made import MADE
from kerasae.samplers.base import LatentSampler, SamplerGraph, _count, register_sampler
from kerasae.samplers.code_batches import standardised_batches

WEIGHTS, ONNX_FILE = "model.weights.h5", "sampler.onnx"
MAX_DIM = 64  # the sequential direction unrolls d passes per block (graph size, training time)
LOG_SCALE_BOUND = 5.0  # exp(5) ~ 148 standard deviations: a bound only a diverging fit meets
CHUNK = 4096
TRACE_AFTER = 64  # a fit of more steps runs traced (tracing the unrolled passes takes ~1 s)


class Flow(keras.Model):
    """`n_blocks` MADE affine blocks over the codes standardised by `code_mean` and
    `code_scale` (weights, so they travel in model.weights.h5 and sampler.onnx)."""

    def __init__(self, dim, n_blocks, hidden_units, inverse, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.inverse = int(dim), bool(inverse)  # inverse: iaf (one-pass sampling)
        orders = ("left-to-right", "right-to-left")
        self.blocks = [
            MADE(
                dim,
                hidden_units,
                order=orders[k % 2],
                output_initializer="zeros",
                name=f"made_{k}",
            )
            for k in range(n_blocks)
        ]
        for block in self.blocks:
            block.build((None, self.dim))
        self.built = True  # every weight exists: save_weights and load_weights may run
        kw = {"shape": (self.dim,), "trainable": False, "dtype": "float32"}
        self.code_mean = self.add_weight(initializer="zeros", name="code_mean", **kw)
        self.code_scale = self.add_weight(initializer="ones", name="code_scale", **kw)

    def _affine(self, block, h):
        shift, log_scale = block(h)
        return shift, LOG_SCALE_BOUND * ops.tanh(log_scale / LOG_SCALE_BOUND)

    def _solve(self, block, target, forward):
        """The sequential direction of one block: y with `forward(y) == target`, where
        forward(y) = y exp(s(y)) + m(y) (maf's sampling) or (y - m(y)) exp(-s(y)) (iaf's
        likelihood; this form has the same fixed point). Returns (y, s(y))."""
        y = ops.zeros_like(target)
        for _ in range(self.dim):  # exact after dim passes: one more position each
            shift, log_scale = self._affine(block, y)
            y = forward(target, shift, log_scale)
        return y, log_scale

    def to_noise(self, x):
        """Standardised codes x -> (u, log |det du/dx|): the likelihood direction."""
        log_det = ops.zeros_like(x[:, 0])
        for block in self.blocks:
            if self.inverse:  # x = u exp(s(u)) + m(u): solve for u
                x, log_scale = self._solve(block, x, lambda t, m, s: (t - m) * ops.exp(-s))
            else:
                shift, log_scale = self._affine(block, x)
                x = (x - shift) * ops.exp(-log_scale)
            log_det = log_det - ops.sum(log_scale, axis=-1)
        return x, log_det

    def from_noise(self, u):
        """u ~ N(0, I) -> standardised codes: the sampling direction (blocks in reverse)."""
        for block in reversed(self.blocks):
            if self.inverse:
                shift, log_scale = self._affine(block, u)
                u = u * ops.exp(log_scale) + shift
            else:  # x_i = u_i exp(s_i(x_<i)) + m_i(x_<i): solve for x
                u, _ = self._solve(block, u, lambda t, m, s: t * ops.exp(s) + m)
        return u

    def standard_log_prob(self, x):
        """log p of standardised codes x (n,) under the flow."""
        u, log_det = self.to_noise(x)
        return -0.5 * ops.sum(u * u, axis=-1) - 0.5 * self.dim * math.log(2 * math.pi) + log_det

    def call(self, x):
        """What `fit` trains on: log p of the standardised codes x."""
        return self.standard_log_prob(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The negative log-likelihood's batch mean, divided by the replica count (optimizers
        sum gradients over tf.distribute replicas; Keras's loss tracker multiplies back)."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return -ops.mean(y_pred) / replicas

    def log_prob(self, z):
        """log p(z) of codes in the model's units: the standardisation's Jacobian included."""
        x = (z - self.code_mean) / self.code_scale
        return self.standard_log_prob(x) - ops.sum(ops.log(self.code_scale))

    def generate(self, u):
        """Codes in the model's units: from_noise(u) * scale + mean."""
        return self.from_noise(u) * self.code_scale + self.code_mean


def _positive_int(name, key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise KerasaeError(f"the {name} sampler's {key} must be a positive integer, got {value!r}")
    return value


class FlowSampler(LatentSampler):
    """A MADE flow fitted by maximum likelihood to the codes (maf and iaf share it)."""

    learned = True
    inverse = False
    defaults = {
        "n_blocks": 5,
        "hidden_units": (128, 128),
        "epochs": 20,
        "batch_size": 512,
        "learning_rate": 1e-3,
    }
    tiny_options = {"n_blocks": 2, "hidden_units": (8,), "epochs": 2}

    def __init__(self, **options):
        super().__init__(**options)
        o = self.options
        units = o["hidden_units"]
        units = (units,) if isinstance(units, int) and not isinstance(units, bool) else units
        if not isinstance(units, (list, tuple)):
            raise KerasaeError(
                f"the {self.name} sampler's hidden_units must be a tuple of positive "
                f"integers, got {units!r}"
            )
        self.hidden_units = tuple(_positive_int(self.name, "hidden_units", u) for u in units)
        for key in ("n_blocks", "epochs", "batch_size"):
            _positive_int(self.name, key, o[key])
        rate = o["learning_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
            raise KerasaeError(
                f"the {self.name} sampler's learning_rate must be a number in (0, 1), got {rate!r}"
            )
        self.options["hidden_units"] = self.hidden_units

    @classmethod
    def check(cls, model):
        super().check(model)
        cls._check_dim(model.latent_dim)

    @classmethod
    def _check_dim(cls, dim):
        if dim > MAX_DIM:
            raise KerasaeError(
                f"the {cls.name} sampler unrolls {dim} sequential passes per block for "
                f"{dim}-d codes; it takes at most {MAX_DIM}: use --sampler gmm or two_stage"
            )

    def _build(self, dim):
        with precision_policy("float32"):  # also inside a mixed-precision training run
            self.net = Flow(
                dim, self.options["n_blocks"], self.hidden_units, self.inverse, name=self.name
            )

    def fit_codes(self, codes, seed):
        self._check_dim(codes.shape[1])
        if len(codes) < 2:
            raise KerasaeError(f"the {self.name} sampler needs at least 2 codes, got {len(codes)}")
        keras.utils.set_random_seed(int(seed))  # the initial weights and the batches repeat
        self._build(codes.shape[1])
        ds, batch, _ = standardised_batches(self.net, codes, self.options["batch_size"], seed)
        steps = len(codes) // batch
        single = tf.distribute.get_strategy().num_replicas_in_sync == 1
        self.net.compile(
            optimizer=keras.optimizers.Adam(self.options["learning_rate"]),
            steps_per_execution=min(16, steps) if single else 1,  # one under tf.distribute
            run_eagerly=self.options["epochs"] * steps <= TRACE_AFTER,  # tracing pays later
        )
        fitted = self.net.fit(ds, epochs=self.options["epochs"], verbose=0, shuffle=False)
        self.history = [float(v) for v in fitted.history["loss"]]
        if not np.all(np.isfinite(self.history)):
            raise KerasaeError(
                f"the {self.name} sampler's fit diverged (a non-finite loss); lower "
                "learning_rate, e.g. --param learning_rate=1e-4"
            )

    def log_prob(self, codes):
        """log p(z) (float64, (n,)) of codes in the model's units under the fitted flow."""
        z = np.asarray(codes, "float32").reshape(-1, self.latent_dim)
        return np.concatenate(
            [
                np.asarray(self.net.log_prob(z[i : i + CHUNK]), "float64")
                for i in range(0, len(z), CHUNK)
            ]
        )

    def noise(self, n, seed=None):
        """The u ~ N(0, I) that `sample_latent(n, seed)` maps (as kerasae-runtime draws it)."""
        u = np.random.default_rng(seed).standard_normal((_count(n), self.latent_dim))
        return u.astype("float32")

    def sample_latent(self, n, seed=None):
        u = self.noise(n, seed)
        return np.concatenate(
            [
                np.asarray(self.net.generate(u[i : i + CHUNK]), "float32")
                for i in range(0, len(u), CHUNK)
            ]
        )

    def describe(self):
        return (
            f"{self.name} sampler ({self.options['n_blocks']} MADE blocks, fitted to "
            f"{self.n_codes} training codes)"
        )

    def extra_meta(self):
        history = getattr(self, "history", None)
        return {"final_loss": history[-1] if history else None}

    def save_weights(self, folder):
        self.net.save_weights(os.path.join(folder, WEIGHTS))

    def restore(self, meta, arrays, folder):
        self._build(int(meta["latent_dim"]))
        self.net.load_weights(os.path.join(folder, WEIGHTS))

    def export_spec(self):
        """The manifest's prior entry: u ~ N(0, I) of latent_dim, z = sampler.onnx(u)."""
        return {
            "kind": "network",
            "dim": int(self.latent_dim),
            "noise_dim": int(self.latent_dim),
            "sampler": self.name,
            "source": self.describe(),
            "file": ONNX_FILE,
        }

    def export_graph(self):
        """sampler.onnx: input "u" (n, d) -> output "z" (n, d), every pass unrolled."""
        d = int(self.latent_dim)
        return SamplerGraph(
            ONNX_FILE,
            lambda u: {"z": self.net.generate(u)},
            "u",
            (None, d),
            "float32",
            ("z",),
            ((None, d),),
        )


@register_sampler("maf")
class MAFSampler(FlowSampler):
    """A masked autoregressive flow over the codes (Papamakarios et al. 2017)."""

    inverse = False


@register_sampler("iaf")
class IAFSampler(FlowSampler):
    """An inverse autoregressive flow over the codes, one-pass sampling (Kingma et al. 2016)."""

    inverse = True
