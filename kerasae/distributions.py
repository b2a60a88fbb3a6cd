"""Keras 3 layers that wrap `tfp.distributions` for variational autoencoders.

The reparameterization trick and the diagonal Gaussian posterior follow Kingma and
Welling, "Auto-Encoding Variational Bayes" (ICLR 2014); the learned Gaussian decoder
scale follows Rybkin et al., "Simple and Effective VAE Training with Calibrated Decoders"
(ICML 2021). `tfp.layers` only speaks Keras 2, so these layers build `tfd` objects inside
`call` and return plain tensors: a model that uses them saves, loads and exports like
any other Keras model, and no Distribution object ever crosses a layer boundary.
"""
import math

import keras
import numpy as np
from keras import ops

from kerasae.losses import gaussian_kl

LIKELIHOODS = ("bernoulli", "gaussian")
KL_METHODS = ("analytic", "mc")
# exp(0.5 * log_var) overflows float32 near log_var = 177; clipping far inside keeps a
# diverging encoder from producing inf/NaN losses while leaving every sane value untouched
LOG_VAR_RANGE = (-30.0, 20.0)


def gaussian_scale_tril(cov):
    """The Cholesky factor of a fitted covariance (numpy), with a small jitter so that a
    dead dimension (zero variance) still factors: what a Gaussian fitted to codes samples
    with (rae's ex-post Gaussian, an export manifest's prior)."""
    cov = np.asarray(cov, dtype="float64")
    jitter = 1e-6 * max(1.0, float(np.trace(cov)) / len(cov))
    return np.linalg.cholesky(cov + jitter * np.eye(len(cov)))


def tfd():
    """tfp.distributions, imported lazily: TFP adds seconds to every `import kerasae`."""
    import tensorflow_probability as tfp

    return tfp.distributions


def posterior(mean, log_var):
    """The diagonal Gaussian q(z|x) as a `tfd.Normal` (batch shape = the latent shape)."""
    log_var = ops.clip(log_var, *LOG_VAR_RANGE)
    return tfd().Normal(loc=mean, scale=ops.exp(0.5 * log_var))


def _dtype(t):
    # float32 even under mixed precision (float16 log-densities lose nats); float64 kept
    return "float64" if t.dtype == "float64" else "float32"


def posterior_log_prob(z, mean, log_var):
    """log q(z|x) per example, summed over latent dimensions: shape (batch,)."""
    dtype = _dtype(mean)
    q = posterior(ops.cast(mean, dtype), ops.cast(log_var, dtype))
    log_q = q.log_prob(ops.cast(z, dtype))
    return ops.sum(ops.reshape(log_q, (ops.shape(log_q)[0], -1)), axis=-1)


def standard_normal_log_prob(z):
    """log N(z; 0, I) per example, summed over latent dimensions: shape (batch,)."""
    z = ops.cast(z, _dtype(z))
    z = ops.reshape(z, (ops.shape(z)[0], -1))
    return -0.5 * ops.sum(ops.square(z) + math.log(2.0 * math.pi), axis=-1)


def pairwise_log_prob(z, mean, log_var):
    """log N(z_i,d; mean_j,d, exp(log_var_j,d)) for every pair (i, j): shape (n, m, dim).

    Per dimension, not summed: beta-TC-VAE's marginals log q(z_d) need each dimension
    alone (Chen et al. 2018). Memory n * m * dim; for a sum over dimensions against many
    components use `mixture_log_prob`.
    """
    dtype = _dtype(mean)
    q = posterior(ops.cast(mean, dtype)[None], ops.cast(log_var, dtype)[None])
    return q.log_prob(ops.cast(z, dtype)[:, None])


def mixture_log_prob(z, means, log_vars):
    """log (1/K sum_k N(z; means_k, diag exp(log_vars_k))) per row of z: shape (n,).

    The quadratic form is expanded into matrix products, so memory is n * K rather than
    n * K * dim: the VampPrior has hundreds of components and the log-likelihood
    estimator evaluates it on thousands of draws at once.
    """
    dtype = _dtype(means)
    z = ops.cast(z, dtype)
    means = ops.cast(means, dtype)
    log_vars = ops.clip(ops.cast(log_vars, dtype), *LOG_VAR_RANGE)
    precision = ops.exp(-log_vars)  # (K, dim)
    # sum_d (z_d - m_kd)^2 / v_kd = z^2 . p_k - 2 z . (m_k p_k) + sum_d m_kd^2 p_kd
    quad = (ops.matmul(ops.square(z), ops.transpose(precision))
            - 2.0 * ops.matmul(z, ops.transpose(means * precision))
            + ops.sum(ops.square(means) * precision, axis=-1)[None])
    dim = ops.cast(ops.shape(z)[-1], dtype)
    log_norm = ops.sum(log_vars, axis=-1)[None] + dim * math.log(2.0 * math.pi)
    # the expanded form can round below 0 where z sits on a mean; the true value cannot
    log_components = -0.5 * (ops.maximum(quad, 0.0) + log_norm)  # (n, K)
    k = ops.cast(ops.shape(means)[0], dtype)
    return ops.logsumexp(log_components, axis=-1) - ops.log(k)


def stateless_seed(seed):
    """An int32 pair TFP's stateless samplers accept, from an int, a pair or a Keras seed."""
    import tensorflow as tf

    if isinstance(seed, keras.random.SeedGenerator):
        seed = seed.next()
    if isinstance(seed, int):
        seed = (seed, 0)
    return tf.cast(tf.convert_to_tensor(seed), "int32")


@keras.saving.register_keras_serializable(package="kerasae")
class GaussianPosterior(keras.layers.Layer):
    """[z_mean, z_log_var] -> z: a reparameterized draw in training, the mean at inference.

    Being the identity at inference is what keeps `encode`/`reconstruct` deterministic and
    lets the exported encoder stop at (z_mean, z_log_var). `kl(...)` gives the per-example
    KL to the standard normal prior: analytic (`tfd.kl_divergence`) or a one-draw Monte
    Carlo estimate log q(z|x) - log p(z), for posteriors without a closed form.
    """

    def __init__(self, kl_method="analytic", seed=None, **kwargs):
        super().__init__(**kwargs)
        if kl_method not in KL_METHODS:
            from kerasae.errors import KerasaeError

            raise KerasaeError(f"kl must be one of {', '.join(KL_METHODS)}, got {kl_method!r}")
        self.kl_method = kl_method
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def sample(self, mean, log_var, seed=None):
        """A reparameterized draw z = mean + scale * eps (gradients reach mean and log_var)."""
        seed = self.seed_generator if seed is None else seed
        return posterior(mean, log_var).sample(seed=stateless_seed(seed))

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
    """(x, logits) -> per-example negative log-likelihood, summed over features (nats).

    Works on logits (softplus form inside `tfd.Bernoulli`), never on sigmoid outputs, so
    saturated pixels cost finite, exact nats. Grey levels in [0, 1] are used as soft
    targets, the usual (if improper) choice for MNIST-like data.
    """

    def mean(self, logits):
        return ops.sigmoid(logits)

    def call(self, x, logits):
        x, logits = flat_float(x), flat_float(logits)
        return -ops.sum(tfd().Bernoulli(logits=logits, dtype=x.dtype).log_prob(x), axis=-1)


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
            from kerasae.errors import KerasaeError

            raise KerasaeError(f"likelihood_scale must be positive, got {scale!r}")
        self.scale = float(scale)
        self.learn_scale = bool(learn_scale)
        self.log_scale = self.add_weight(
            shape=(), name="log_scale", trainable=self.learn_scale,
            initializer=keras.initializers.Constant(math.log(self.scale)))

    def call(self, x, mean):
        x, mean = flat_float(x), flat_float(mean)
        scale = ops.exp(ops.cast(self.log_scale, x.dtype))
        return -ops.sum(tfd().Normal(loc=mean, scale=scale).log_prob(x), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "learn_scale": self.learn_scale}


def flat_float(t):
    """(batch, features) in float32 (float64 kept): summing 784 log-probs in float16 under
    mixed precision loses nats."""
    t = ops.cast(t, "float64" if t.dtype == "float64" else "float32")
    return ops.reshape(t, (ops.shape(t)[0], -1))
