"""The `two_stage` latent sampler: a second, small VAE fitted to the codes.

Dai and Wipf, "Diagnosing and Enhancing VAE Models" (ICLR 2019): the aggregate posterior
of a first-stage autoencoder's codes is not N(0, I), so a second VAE learns the codes'
distribution, and sampling is u ~ N(0, I) -> second decoder's mean -> first decoder. As
in the paper the second stage has a learned decoder variance gamma (one scalar,
p(z | u) = N(g(u), gamma I)), which lets it match a distribution on a thin manifold;
log gamma is kept in [-12, 4] for float32 safety.
Simplifications, to keep it CPU-cheap: an MLP of `hidden_units` (default two layers of
256) without the paper's residual 1024-wide blocks, trained on the standardised codes for
a fixed number of `epochs` with Adam. It is a `kerasae.models.vae.VAE` (a Gaussian
likelihood with a learned scale, a linear decoder), trained by the base class's step. The mean and
scale of the standardisation are
weights of the network, so g(u) un-standardises inside it (and inside sampler.onnx).
"""

import os
import re
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import kerasae.nets as nets
from kerasae.distribute import precision_policy
from kerasae.errors import KerasaeError
from kerasae.models.vae import VAE
from kerasae.probability.likelihoods import gaussian_nll
from kerasae.samplers.base import LatentSampler, SamplerGraph, _count, register_sampler
from kerasae.samplers.code_batches import standardised_batches

WEIGHTS, ONNX_FILE = "model.weights.h5", "sampler.onnx"
LOG_GAMMA_RANGE = (-12.0, 4.0)
LOG_SCALE_RANGE = tuple(0.5 * g for g in LOG_GAMMA_RANGE)  # gamma = scale^2
NET_FORMAT = 2  # sampler.json's "net_format": 1 (absent) is kerasae 0.2's own small model
MIN_SPREAD = 0.1  # below: the second stage's samples are all nearly the same code


def spread(samples, scale):
    """How widely sampled codes vary against the training codes: the mean over dimensions
    of their standard deviation over the codes' (1: as widely; near 0: one point)."""
    return float(np.mean(np.std(samples, axis=0) / np.asarray(scale)))


class SecondStageVAE(VAE):
    """The second stage: a VAE over the standardised codes, p(z | u) = N(g(u), gamma I) with
    one learned gamma (the likelihood's scale, gamma = scale^2, log gamma kept in
    LOG_GAMMA_RANGE), MLP networks with a linear decoder; trained by the base class's step.
    g(u) is un-standardised by two weights (`generate`), so sampler.onnx holds it all."""

    def __init__(self, *, code_mean=None, code_scale=None, **kwargs):
        super().__init__(likelihood="gaussian", likelihood_scale=1.0, learn_scale=True, **kwargs)
        dim = self.data_shape[0]
        # float32, also when fitted inside a mixed-precision training run
        self.code_mean = self.add_weight(
            shape=(dim,), initializer="zeros", trainable=False, name="code_mean", dtype="float32"
        )
        self.code_scale = self.add_weight(
            shape=(dim,), initializer="ones", trainable=False, name="code_scale", dtype="float32"
        )

    def decoder_nll(self, x, z, training=False):
        log_scale = ops.clip(self.likelihood_layer.log_scale, *LOG_SCALE_RANGE)
        return gaussian_nll(x, self.decoder(z, training=training), log_scale)

    def generate(self, u):
        """Codes in the first stage's units: g(u) * scale + mean."""
        return self.decoder(u, training=False) * self.code_scale + self.code_mean


def _second_stage(latent_dim, second_latent_dim, hidden_units):
    """The second-stage VAE, built in float32 whatever the dtype policy in scope."""
    with precision_policy("float32"):
        body = {"hidden_units": tuple(hidden_units)}
        encoder = nets.build_encoder(
            (latent_dim,), second_latent_dim, "mlp", output_names=("u_mean", "u_log_var"), **body
        )
        decoder = nets.build_decoder(
            second_latent_dim, (latent_dim,), "mlp", output_activation="linear", **body
        )
        return SecondStageVAE(
            input_shape=(latent_dim,),
            latent_dim=second_latent_dim,
            encoder=encoder,
            decoder=decoder,
            name="two_stage",
        )


def _load_v1_weights(net, path):
    """Weights a two_stage sampler of kerasae 0.2 saved (its own small Keras model: dense
    layers in creation order, then log gamma, the code mean and scale), into `net`."""
    import h5py  # only to read an old file

    def dense_group(group):  # "dense", "dense_1", ...: in the order they were made
        names = [n for n in group if re.fullmatch(r"dense(_\d+)?", n)]
        names.sort(key=lambda n: int(n.partition("_")[2] or 0))
        return [[group[n]["vars"][str(i)][()] for i in range(2)] for n in names]

    with h5py.File(path, "r") as f:
        old = {part: dense_group(f[part]["layers"]) for part in ("encoder", "decoder")}
        log_gamma, mean, scale = (f["vars"][str(i)][()] for i in range(3))
    for part in ("encoder", "decoder"):
        layers = [layer for layer in getattr(net, part).layers if layer.weights]
        shapes = [[tuple(w.shape) for w in layer.weights] for layer in layers]
        if shapes != [[a.shape for a in pair] for pair in old[part]]:
            raise KerasaeError(
                f"{path} was saved by an earlier kerasae with another layout "
                "(asymmetric hidden_units); fit the sampler again: kerasae "
                "fit-sampler RUN --sampler two_stage"
            )
        for layer, weights in zip(layers, old[part]):
            layer.set_weights(weights)
    net.likelihood_layer.log_scale.assign(0.5 * float(log_gamma))  # gamma = scale^2
    net.code_mean.assign(mean)
    net.code_scale.assign(scale)


@register_sampler("two_stage")
class TwoStageSampler(LatentSampler):
    """Dai and Wipf's second-stage VAE over the codes (see the module docstring)."""

    learned = True
    defaults = {
        "second_latent_dim": None,
        "hidden_units": (256, 256),
        "epochs": 50,
        "batch_size": 128,
        "learning_rate": 1e-3,
    }
    tiny_options = {"hidden_units": (8,), "epochs": 2}  # for the conformance check

    def _settings(self, latent_dim):
        o = self.options
        d2 = latent_dim if o["second_latent_dim"] is None else o["second_latent_dim"]
        units = o["hidden_units"]
        units = (units,) if isinstance(units, int) else tuple(units)
        for key, value in (
            ("second_latent_dim", d2),
            ("epochs", o["epochs"]),
            ("batch_size", o["batch_size"]),
            *(("hidden_units", u) for u in units),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise KerasaeError(
                    f"the two_stage sampler's {key} must be positive integers, got {value!r}"
                )
        return int(d2), tuple(int(u) for u in units)

    def fit_codes(self, codes, seed):
        if len(codes) < 2:
            raise KerasaeError(f"two_stage needs at least 2 training codes, got {len(codes)}")
        self.second_latent_dim, units = self._settings(codes.shape[1])
        keras.utils.set_random_seed(int(seed))  # the weights and the noise repeat
        self.net = _second_stage(codes.shape[1], self.second_latent_dim, units)
        self.net.reseed(int(seed))  # its posterior draws repeat
        ds, batch, scale = standardised_batches(self.net, codes, self.options["batch_size"], seed)
        # several steps per call, but one under tf.distribute (see Autoencoder's fast path)
        single = tf.distribute.get_strategy().num_replicas_in_sync == 1
        self.net.compile(
            optimizer=keras.optimizers.Adam(self.options["learning_rate"]),
            steps_per_execution=min(16, len(codes) // batch) if single else 1,
        )
        history = self.net.fit(ds, epochs=self.options["epochs"], verbose=0, shuffle=False)
        self.history = [float(v) for v in history.history["loss"]]
        self.spread = spread(self.sample_latent(512, seed=int(seed)), scale)
        if self.spread < MIN_SPREAD:  # posterior collapse: g(u) ignores u
            warnings.warn(
                f"two_stage: the second VAE collapsed (its samples vary "
                f"{self.spread:.0%} as much as the codes: nearly every sample the "
                f"same); codes already shaped like a Gaussian (an aae's or a wae's) "
                f"leave it nothing to learn: use --sampler gmm or gaussian",
                stacklevel=2,
            )

    def sample_latent(self, n, seed=None):
        u = np.random.default_rng(seed).standard_normal((_count(n), self.second_latent_dim))
        u = u.astype("float32")
        return np.concatenate(
            [
                np.asarray(self.net.generate(u[i : i + 4096]), "float32")
                for i in range(0, len(u), 4096)
            ]
        )

    def describe(self):
        return (
            f"two_stage sampler (a second VAE with a {self.second_latent_dim}-d latent, "
            f"fitted to {self.n_codes} training codes)"
        )

    def extra_meta(self):
        return {
            "second_latent_dim": self.second_latent_dim,
            "net_format": NET_FORMAT,
            "hidden_units": list(self._settings(self.latent_dim)[1]),
            "final_loss": self.history[-1] if getattr(self, "history", None) else None,
            "spread": getattr(self, "spread", None),
        }

    def save_weights(self, folder):
        self.net.save_weights(os.path.join(folder, WEIGHTS))

    def restore(self, meta, arrays, folder):
        self.second_latent_dim = int(meta["second_latent_dim"])
        self.net = _second_stage(
            int(meta["latent_dim"]), self.second_latent_dim, tuple(meta["hidden_units"])
        )
        path = os.path.join(folder, WEIGHTS)
        if meta.get("net_format", 1) == 1:
            _load_v1_weights(self.net, path)
        else:
            self.net.load_weights(path)

    def export_spec(self):
        """The manifest's prior entry: u ~ N(0, I) of `second_latent_dim`, z = sampler.onnx(u)."""
        return {
            "kind": "two_stage",
            "dim": int(self.latent_dim),
            "sampler": self.name,
            "source": self.describe(),
            "file": ONNX_FILE,
            "second_latent_dim": int(self.second_latent_dim),
        }

    def export_graph(self):
        """sampler.onnx: input "u" (n, d2) -> output "z" (n, latent_dim), the
        un-standardisation inside."""
        return SamplerGraph(
            ONNX_FILE,
            lambda u: {"z": self.net.generate(u)},
            "u",
            (None, int(self.second_latent_dim)),
            "float32",
            ("z",),
            ((None, int(self.latent_dim)),),
        )
