"""Gaussian log-densities and the KL of a diagonal Gaussian posterior, each written once.

The diagonal Gaussian posterior q(z|x) = N(mean, exp(log_var)) and its KL to N(0, I) are
those of Kingma and Welling, "Auto-Encoding Variational Bayes" (ICLR 2014, appendix B).
Plain ops only: training and the export's `scorer.onnx` evaluate the same functions.
Densities are float32 even under mixed precision (float16 log-densities lose nats).
"""

import math

import numpy as np
from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


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


def _dtype(t):
    # float32 even under mixed precision (float16 log-densities lose nats); float64 kept
    return "float64" if t.dtype == "float64" else "float32"


def _per_example(t):
    return ops.sum(ops.reshape(t, (ops.shape(t)[0], -1)), axis=-1)


def _cast(*tensors, like):
    dtype = _dtype(like)
    return [ops.cast(t, dtype) for t in tensors]


def diagonal_log_prob(z, mean, log_var):
    """log N(z; mean, diag exp(log_var)) elementwise (not summed); log_var is clipped to
    LOG_VAR_RANGE, as every posterior is."""
    log_var = ops.clip(log_var, *LOG_VAR_RANGE)
    return -0.5 * (ops.square(z - mean) * ops.exp(-log_var) + log_var + LOG_2PI)


def posterior_log_prob(z, mean, log_var):
    """log q(z|x) per example, summed over latent dimensions: shape (batch,)."""
    z, mean, log_var = _cast(z, mean, log_var, like=mean)
    return _per_example(diagonal_log_prob(z, mean, log_var))


def standard_normal_log_prob(z):
    """log N(z; 0, I) per example, summed over latent dimensions: shape (batch,)."""
    z = ops.cast(z, _dtype(z))
    z = ops.reshape(z, (ops.shape(z)[0], -1))
    return -0.5 * ops.sum(ops.square(z) + LOG_2PI, axis=-1)


def pairwise_log_prob(z, mean, log_var):
    """log N(z_i,d; mean_j,d, exp(log_var_j,d)) for every pair (i, j): shape (n, m, dim).

    Per dimension, not summed: beta-TC-VAE's marginals log q(z_d) need each dimension
    alone (Chen et al. 2018). Memory n * m * dim; for a sum over dimensions against many
    components use `mixture_log_prob`.
    """
    z, mean, log_var = _cast(z, mean, log_var, like=mean)
    return diagonal_log_prob(z[:, None], mean[None], log_var[None])


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
    quad = (
        ops.matmul(ops.square(z), ops.transpose(precision))
        - 2.0 * ops.matmul(z, ops.transpose(means * precision))
        + ops.sum(ops.square(means) * precision, axis=-1)[None]
    )
    dim = ops.cast(ops.shape(z)[-1], dtype)
    log_norm = ops.sum(log_vars, axis=-1)[None] + dim * LOG_2PI
    # the expanded form can round below 0 where z sits on a mean; the true value cannot
    log_components = -0.5 * (ops.maximum(quad, 0.0) + log_norm)  # (n, K)
    k = ops.cast(ops.shape(means)[0], dtype)
    return ops.logsumexp(log_components, axis=-1) - ops.log(k)


def gaussian_kl(mean, log_var, z=None):
    """Per-example KL(N(mean, exp(log_var)) || N(0, I)), summed over latent dimensions.

    Analytic: 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2) (Kingma and Welling 2014,
    appendix B). Given a draw `z` from the posterior, the one-sample Monte Carlo estimate
    log q(z|x) - log p(z) instead (unbiased, noisier; the form that still works once the
    posterior or prior has no closed form).
    """
    mean, log_var = _cast(mean, log_var, like=mean)
    if z is not None:
        return posterior_log_prob(z, mean, log_var) - standard_normal_log_prob(
            ops.cast(z, mean.dtype)
        )
    log_var = ops.clip(log_var, *LOG_VAR_RANGE)
    return _per_example(0.5 * (ops.exp(log_var) + ops.square(mean) - 1.0 - log_var))
