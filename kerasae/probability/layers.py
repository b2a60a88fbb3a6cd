"""Keras 3 layers of the variational families: the posterior draw and the decoder likelihood.

The reparameterization trick and the diagonal Gaussian posterior follow Kingma and
Welling, "Auto-Encoding Variational Bayes" (ICLR 2014); the learned Gaussian decoder
scale follows Rybkin et al., "Simple and Effective VAE Training with Calibrated Decoders"
(ICML 2021). The densities are `kerasae.probability.gaussian` and `.likelihoods`, written
once in plain ops; tensorflow-probability adds the reparameterized draw (`tfd.Normal`'s
stateless sampler), built inside `call` (`tfp.layers` only speaks Keras 2), so no
Distribution object ever crosses a layer boundary and a model saves, loads and exports
like any other Keras model.
"""

import math

import keras
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.probability.gaussian import LOG_VAR_RANGE, gaussian_kl
from kerasae.probability.likelihoods import bernoulli_nll, gaussian_nll

LIKELIHOODS = ("bernoulli", "gaussian")
KL_METHODS = ("analytic", "mc")


def stateless_seed(seed):
    """An int32 pair TFP's stateless samplers accept, from an int, a pair or a Keras seed."""
    if isinstance(seed, keras.random.SeedGenerator):
        seed = seed.next()
    if isinstance(seed, int):
        seed = (seed, 0)
    return tf.cast(tf.convert_to_tensor(seed), "int32")


def reparameterized_draw(mean, log_var, seed):
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I) drawn statelessly from `seed`
    (gradients reach mean and log_var)."""
    import tensorflow_probability as tfp  # seconds to import: only once a VAE trains

    log_var = keras.ops.clip(log_var, *LOG_VAR_RANGE)
    normal = tfp.distributions.Normal(loc=mean, scale=keras.ops.exp(0.5 * log_var))
    return normal.sample(seed=stateless_seed(seed))


@keras.saving.register_keras_serializable(package="kerasae")
class GaussianPosterior(keras.layers.Layer):
    """[z_mean, z_log_var] -> z: a reparameterized draw in training, the mean at inference.

    Being the identity at inference is what keeps `encode`/`reconstruct` deterministic and
    lets the exported encoder stop at (z_mean, z_log_var). `kl(...)` gives the per-example
    KL to the standard normal prior: analytic, or a one-draw Monte Carlo estimate
    log q(z|x) - log p(z), for posteriors without a closed form.
    """

    def __init__(self, kl_method="analytic", seed=None, **kwargs):
        super().__init__(**kwargs)
        if kl_method not in KL_METHODS:
            raise KerasaeError(f"kl must be one of {', '.join(KL_METHODS)}, got {kl_method!r}")
        self.kl_method = kl_method
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def sample(self, mean, log_var, seed=None):
        """A reparameterized draw z = mean + scale * eps (gradients reach mean and log_var)."""
        return reparameterized_draw(mean, log_var, self.seed_generator if seed is None else seed)

    def call(self, inputs, training=False):
        mean, log_var = inputs
        return self.sample(mean, log_var) if training else mean

    def kl(self, mean, log_var, z=None):
        """Per-example KL(q(z|x) || N(0, I)) summed over latent dimensions: shape (batch,)."""
        return gaussian_kl(mean, log_var, z=z if self.kl_method == "mc" else None)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "kl_method": self.kl_method, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerasae")
class BernoulliLikelihood(keras.layers.Layer):
    """(x, logits) -> per-example negative log-likelihood, summed over features (nats):
    `kerasae.probability.likelihoods.bernoulli_nll`."""

    def mean(self, logits):
        return keras.ops.sigmoid(logits)

    def call(self, x, logits):
        return bernoulli_nll(x, logits)


@keras.saving.register_keras_serializable(package="kerasae")
class GaussianLikelihood(keras.layers.Layer):
    """(x, mean) -> per-example Gaussian negative log-likelihood, summed over features.

    `scale` is the fixed standard deviation; with `learn_scale=True` one shared scale is
    learned (stored as a log so it stays positive), which calibrates the decoder and
    balances reconstruction against KL without tuning beta (Rybkin et al. 2021).
    """

    def __init__(self, scale=0.1, learn_scale=False, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise KerasaeError(f"likelihood_scale must be positive, got {scale!r}")
        self.scale = float(scale)
        self.learn_scale = bool(learn_scale)
        self.log_scale = self.add_weight(
            shape=(),
            name="log_scale",
            trainable=self.learn_scale,
            initializer=keras.initializers.Constant(math.log(self.scale)),
        )

    def call(self, x, mean):
        return gaussian_nll(x, mean, self.log_scale)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "learn_scale": self.learn_scale}
