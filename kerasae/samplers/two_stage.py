"""The `two_stage` latent sampler: a second, small VAE fitted to the codes.

Dai and Wipf, "Diagnosing and Enhancing VAE Models" (ICLR 2019): the aggregate posterior
of a first-stage autoencoder's codes is not N(0, I), so a second VAE learns the codes'
distribution, and sampling is u ~ N(0, I) -> second decoder's mean -> first decoder. As
in the paper the second stage has a learned decoder variance gamma (one scalar,
p(z | u) = N(g(u), gamma I)), which lets it match a distribution on a thin manifold;
log gamma is kept in [-12, 4] for float32 safety.
Simplifications, to keep it CPU-cheap: an MLP of `hidden_units` (default two layers of
256) without the paper's residual 1024-wide blocks, trained on the standardised codes for
a fixed number of `epochs` with Adam. The mean and scale of the standardisation are
weights of the network, so g(u) un-standardises inside it (and inside sampler.onnx).
"""
import os
import warnings

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.samplers.base import LatentSampler, SamplerGraph, _count, register_sampler

WEIGHTS, ONNX_FILE = "model.weights.h5", "sampler.onnx"
LOG_GAMMA_RANGE = (-12.0, 4.0)
MIN_SPREAD = 0.1  # below: the second stage's samples are all nearly the same code


def spread(samples, scale):
    """How widely sampled codes vary against the training codes: the mean over dimensions
    of their standard deviation over the codes' (1: as widely; near 0: one point)."""
    return float(np.mean(np.std(samples, axis=0) / np.asarray(scale)))


def _second_stage(latent_dim, second_latent_dim, hidden_units):
    """The second-stage VAE as a keras.Model with its own train_step (built lazily so that
    importing kerasae.samplers never imports Keras)."""
    import keras
    from keras import layers, ops

    def mlp(n_in, name):
        x = keras.Input((n_in,))
        h = x
        for i, width in enumerate(hidden_units):
            h = layers.Dense(width, activation="relu", dtype="float32",
                             name=f"{name}_dense{i}")(h)
        return x, h

    z_in, h = mlp(latent_dim, "enc")
    # float32 throughout, also when fitted inside a mixed-precision training run
    encoder = keras.Model(z_in, [layers.Dense(second_latent_dim, dtype="float32",
                                              name="u_mean")(h),
                                 layers.Dense(second_latent_dim, dtype="float32",
                                              name="u_log_var")(h)],
                          name="second_encoder")
    u_in, h = mlp(second_latent_dim, "dec")
    decoder = keras.Model(u_in, layers.Dense(latent_dim, dtype="float32", name="z_std")(h),
                          name="second_decoder")

    class SecondStageVAE(keras.Model):
        def __init__(self):
            super().__init__(name="two_stage")
            self.encoder, self.decoder = encoder, decoder
            self.log_gamma = self.add_weight(shape=(), initializer="zeros", name="log_gamma")
            # the standardisation of the codes: g(u) = decoder(u) * scale + mean
            self.code_mean = self.add_weight(shape=(latent_dim,), initializer="zeros",
                                             trainable=False, name="code_mean")
            self.code_scale = self.add_weight(shape=(latent_dim,), initializer="ones",
                                              trainable=False, name="code_scale")
            self.seeds = keras.random.SeedGenerator(0)
            self.loss_tracker = keras.metrics.Mean(name="loss")

        def call(self, z_std, training=False):
            mean, _ = self.encoder(z_std, training=training)
            return self.decoder(mean, training=training)

        def generate(self, u):
            return self.decoder(u, training=False) * self.code_scale + self.code_mean

        def train_step(self, z):
            import tensorflow as tf

            with tf.GradientTape() as tape:
                mean, log_var = self.encoder(z, training=True)
                log_var = ops.clip(log_var, -30.0, 20.0)
                u = mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean),
                                                                         seed=self.seeds)
                log_gamma = ops.clip(self.log_gamma, *LOG_GAMMA_RANGE)
                sq = ops.sum(ops.square(z - self.decoder(u, training=True)), axis=-1)
                # -log N(z; g(u), gamma I) without the constant, and KL(q(u|z) || N(0, I))
                nll = 0.5 * sq / ops.exp(log_gamma) + 0.5 * latent_dim * log_gamma
                kl = 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var,
                                   axis=-1)
                loss = ops.mean(nll + kl)
            variables = self.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker]

    net = SecondStageVAE()
    net(np.zeros((1, latent_dim), "float32"))  # build every weight before load_weights
    return net


@register_sampler("two_stage")
class TwoStageSampler(LatentSampler):
    """Dai and Wipf's second-stage VAE over the codes (see the module docstring)."""

    learned = True
    defaults = {"second_latent_dim": None, "hidden_units": (256, 256), "epochs": 50,
                "batch_size": 128, "learning_rate": 1e-3}

    def _settings(self, latent_dim):
        o = self.options
        d2 = latent_dim if o["second_latent_dim"] is None else o["second_latent_dim"]
        units = o["hidden_units"]
        units = (units,) if isinstance(units, int) else tuple(units)
        for key, value in (("second_latent_dim", d2), ("epochs", o["epochs"]),
                           ("batch_size", o["batch_size"]), *(("hidden_units", u) for u in units)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise KerasaeError(f"the two_stage sampler's {key} must be positive "
                                   f"integers, got {value!r}")
        return int(d2), tuple(int(u) for u in units)

    def fit_codes(self, codes, seed):
        import keras
        import tensorflow as tf

        if len(codes) < 2:
            raise KerasaeError(f"two_stage needs at least 2 training codes, got {len(codes)}")
        self.second_latent_dim, units = self._settings(codes.shape[1])
        keras.utils.set_random_seed(int(seed))  # the weights and the noise repeat
        self.net = _second_stage(codes.shape[1], self.second_latent_dim, units)
        self.net.seeds.state.assign(np.array([int(seed), 0], self.net.seeds.state.dtype))
        mean, scale = codes.mean(axis=0), codes.std(axis=0)
        scale = np.maximum(scale, 1e-6 * max(1.0, float(scale.max())))  # a dead dimension
        self.net.code_mean.assign(mean.astype("float32"))
        self.net.code_scale.assign(scale.astype("float32"))
        z = ((codes - mean) / scale).astype("float32")
        batch = min(self.options["batch_size"], len(z))
        ds = (tf.data.Dataset.from_tensor_slices(z).shuffle(len(z), seed=int(seed))
              .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
        # several steps per call, but one under tf.distribute (see Autoencoder's fast path)
        single = tf.distribute.get_strategy().num_replicas_in_sync == 1
        self.net.compile(optimizer=keras.optimizers.Adam(self.options["learning_rate"]),
                         steps_per_execution=min(16, len(z) // batch) if single else 1)
        history = self.net.fit(ds, epochs=self.options["epochs"], verbose=0, shuffle=False)
        self.history = [float(v) for v in history.history["loss"]]
        self.spread = spread(self.sample_latent(512, seed=int(seed)), scale)
        if self.spread < MIN_SPREAD:  # posterior collapse: g(u) ignores u
            warnings.warn(f"two_stage: the second VAE collapsed (its samples vary "
                          f"{self.spread:.0%} as much as the codes: nearly every sample the "
                          f"same); codes already shaped like a Gaussian (an aae's or a wae's) "
                          f"leave it nothing to learn: use --sampler gmm or gaussian",
                          stacklevel=2)

    def sample_latent(self, n, seed=None):
        u = np.random.default_rng(seed).standard_normal((_count(n), self.second_latent_dim))
        u = u.astype("float32")
        return np.concatenate([np.asarray(self.net.generate(u[i:i + 4096]), "float32")
                               for i in range(0, len(u), 4096)])

    def describe(self):
        return (f"two_stage sampler (a second VAE with a {self.second_latent_dim}-d latent, "
                f"fitted to {self.n_codes} training codes)")

    def extra_meta(self):
        return {"second_latent_dim": self.second_latent_dim,
                "hidden_units": list(self._settings(self.latent_dim)[1]),
                "final_loss": self.history[-1] if getattr(self, "history", None) else None,
                "spread": getattr(self, "spread", None)}

    def save_weights(self, folder):
        self.net.save_weights(os.path.join(folder, WEIGHTS))

    def restore(self, meta, arrays, folder):
        self.second_latent_dim = int(meta["second_latent_dim"])
        self.net = _second_stage(int(meta["latent_dim"]), self.second_latent_dim,
                                 tuple(meta["hidden_units"]))
        self.net.load_weights(os.path.join(folder, WEIGHTS))

    def export_spec(self):
        """The manifest's prior entry: u ~ N(0, I) of `second_latent_dim`, z = sampler.onnx(u)."""
        return {"kind": "two_stage", "dim": int(self.latent_dim), "sampler": self.name,
                "source": self.describe(), "file": ONNX_FILE,
                "second_latent_dim": int(self.second_latent_dim)}

    def export_graph(self):
        """sampler.onnx: input "u" (n, d2) -> output "z" (n, latent_dim), the
        un-standardisation inside."""
        return SamplerGraph(ONNX_FILE, lambda u: {"z": self.net.generate(u)}, "u",
                            (None, int(self.second_latent_dim)), "float32", ("z",),
                            ((None, int(self.latent_dim)),))
