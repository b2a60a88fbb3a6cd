"""Sampling from a denoising autoencoder's learned score (Alain and Bengio, JMLR 2014).

A DAE trained with Gaussian corruption of std sigma has an optimal reconstruction r with
r(x) - x ~= sigma^2 grad log p(x), so s(x) = (r(x) - x) / sigma^2 estimates the score of
the data density. Langevin dynamics on it,

    x <- x + eps * s(x) + sqrt(2 eps) * z,    z ~ N(0, I),

draws (approximately) from p as eps -> 0 and the number of steps grows.

The DAE knows the score at its own sigma only, so the optional annealing is a decreasing
schedule of injected noise rather than a noise-conditional score (Song and Ermon 2019): the
step size follows their eps_i = eps * (sigma_i / sigma)^2 along a geometric sigma_i from
`sigma_max` down to sigma, with the drift capped at one full denoising step (eps_i <=
sigma^2, beyond which the update overshoots r(x)). At the cap a step is r(x) plus noise of
std sqrt(2) sigma_i, the corrupt-and-denoise chain of Bengio et al. (NeurIPS 2013) at a high
temperature, which carries chains started from uniform noise towards the data quickly.
"""
import math

import numpy as np

from kerasae.errors import KerasaeError, NotGenerativeError


def score_sigma(model):
    """The Gaussian corruption std behind `model`'s score estimate; refuses other models."""
    sigma = getattr(model, "score_sigma", None)
    if not sigma:
        name = getattr(model, "registered_name", type(model).__name__)
        raise NotGenerativeError(
            f"model {name!r} has no score estimate for Langevin sampling; train a dae or sdae "
            "with --param noise=gaussian")
    return float(sigma)


def score_estimate(model, x, batch_size=1024):
    """s(x) = (r(x) - x) / sigma^2 for each row of `x` (numpy in, numpy out)."""
    sigma = score_sigma(model)
    x = np.asarray(x, dtype="float32")
    return (model.reconstruct(x, batch_size=batch_size) - x) / sigma ** 2


def _schedule(steps, step_size, sigma, anneal, sigma_max):
    if not anneal:
        return np.full(steps, step_size)
    if sigma_max <= sigma:
        raise KerasaeError(f"sigma_max ({sigma_max}) must exceed the model's noise std "
                           f"({sigma}) for annealing")
    levels = np.geomspace(sigma_max, sigma, steps)
    return np.minimum(step_size * (levels / sigma) ** 2, sigma ** 2)


def langevin(model, n, steps=100, step_size=None, x0=None, seed=0, anneal=False,
             sigma_max=1.0, clip=(0.0, 1.0), final_denoise=True, return_chain=False):
    """`n` samples by Langevin dynamics on the DAE score, started from `x0` (default uniform
    noise over `clip`, the data range).

    step_size: eps (default sigma^2 / 2). anneal: the decreasing noise schedule above.
    clip: (low, high) bounds every iterate is clipped to, or None. final_denoise: return
    r(x_K) instead of x_K (the last step's injected noise is not part of a sample).
    return_chain: also return the (steps + 1, n, ...) iterates.
    """
    import tensorflow as tf

    sigma = score_sigma(model)
    for key, value in (("n", n), ("steps", steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise KerasaeError(f"{key} must be a positive integer, got {value!r}")
    step_size = sigma ** 2 / 2 if step_size is None else step_size
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise KerasaeError(f"step size must be a positive number, got {step_size!r}")
    rng = np.random.default_rng(seed)
    shape = tuple(model.data_shape)
    low, high = clip if clip is not None else (0.0, 1.0)
    if x0 is None:
        x = rng.uniform(low, high, size=(n, *shape)).astype("float32")
    else:
        x = np.asarray(x0, dtype="float32")
        if x.shape != (n, *shape):
            raise KerasaeError(f"x0 must have shape {(n, *shape)}, got {x.shape}")

    @tf.function(reduce_retracing=True)
    def step(x, eps, z):
        x_new = x + eps * (model(x, training=False) - x) / sigma ** 2 + tf.sqrt(2.0 * eps) * z
        return tf.clip_by_value(x_new, low, high) if clip is not None else x_new

    chain = [x] if return_chain else None
    xt = tf.constant(x)
    for eps in _schedule(steps, float(step_size), sigma, anneal, sigma_max):
        z = tf.constant(rng.standard_normal(size=x.shape).astype("float32"))
        xt = step(xt, tf.constant(eps, "float32"), z)
        if return_chain:
            chain.append(xt.numpy())
    out = model.reconstruct(xt.numpy()) if final_denoise else xt.numpy()
    return (out, np.stack(chain)) if return_chain else out
