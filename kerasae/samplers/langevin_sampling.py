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

A noise-conditional model (`ncsn`, which has `sigmas` and `score_at(x, sigma)`) knows the
score at every level, so `annealed_langevin` runs Song and Ermon's Algorithm 1 exactly,
and `langevin(..., anneal=True)` hands such a model to it.
"""

import math

import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError, NotGenerativeError


def score_sigma(model):
    """The Gaussian corruption std behind `model`'s score estimate; refuses other models."""
    sigma = getattr(model, "score_sigma", None)
    if not sigma:
        name = getattr(model, "registered_name", type(model).__name__)
        raise NotGenerativeError(
            f"model {name!r} has no score estimate for Langevin sampling; train a dae or sdae "
            "with --param noise=gaussian"
        )
    return float(sigma)


def score_estimate(model, x, batch_size=1024):
    """s(x) = (r(x) - x) / sigma^2 for each row of `x` (numpy in, numpy out)."""
    sigma = score_sigma(model)
    x = np.asarray(x, dtype="float32")
    return (model.reconstruct(x, batch_size=batch_size) - x) / sigma**2


def _schedule(steps, step_size, sigma, anneal, sigma_max):
    if not anneal:
        return np.full(steps, step_size)
    if sigma_max <= sigma:
        raise KerasaeError(
            f"sigma_max ({sigma_max}) must exceed the model's noise std ({sigma}) for annealing"
        )
    levels = np.geomspace(sigma_max, sigma, steps)
    return np.minimum(step_size * (levels / sigma) ** 2, sigma**2)


def langevin(
    model,
    n,
    steps=100,
    step_size=None,
    x0=None,
    seed=0,
    anneal=False,
    sigma_max=1.0,
    clip=(0.0, 1.0),
    final_denoise=True,
    return_chain=False,
):
    """`n` samples by Langevin dynamics on the DAE score, started from `x0` (default uniform
    noise over `clip`, the data range).

    step_size: eps (default sigma^2 / 2). anneal: the decreasing noise schedule above.
    clip: (low, high) bounds every iterate is clipped to, or None. final_denoise: return
    r(x_K) instead of x_K (the last step's injected noise is not part of a sample).
    return_chain: also return the (steps + 1, n, ...) iterates.

    A noise-conditional model (ncsn) with anneal=True runs `annealed_langevin` instead,
    with `steps` steps per noise level and `step_size` as its epsilon (sigma_max is the
    model's own); its chain holds the iterate after each level.
    """
    if anneal and is_noise_conditional(model):
        return annealed_langevin(
            model,
            n,
            steps_per_level=steps,
            epsilon=DEFAULT_EPSILON if step_size is None else step_size,
            seed=seed,
            x0=x0,
            clip=clip,
            final_denoise=final_denoise,
            return_chain=return_chain,
        )
    sigma = score_sigma(model)
    _check_counts(n=n, steps=steps)
    step_size = sigma**2 / 2 if step_size is None else step_size
    _check_positive("step size", step_size)
    rng = np.random.default_rng(seed)
    low, high = clip if clip is not None else (0.0, 1.0)
    x = _start(model, n, x0, rng, low, high)

    @tf.function(reduce_retracing=True)
    def step(x, eps, z):
        x_new = x + eps * (model(x, training=False) - x) / sigma**2 + tf.sqrt(2.0 * eps) * z
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


# ---------------------------------------------------------------- annealed (Song and Ermon)
#: epsilon of Algorithm 1: Song and Ermon's value for [0, 1] images (sigma 1 to 0.01)
DEFAULT_EPSILON = 2e-5


def is_noise_conditional(model):
    """True for a model that estimates the score at several noise levels (an ncsn)."""
    return (
        callable(getattr(model, "score_at", None)) and getattr(model, "sigmas", None) is not None
    )


def annealed_langevin(
    model,
    n,
    steps_per_level=100,
    epsilon=DEFAULT_EPSILON,
    seed=0,
    x0=None,
    clip=(0.0, 1.0),
    final_denoise=True,
    return_chain=False,
    batch_size=512,
):
    """`n` samples by annealed Langevin dynamics (Song and Ermon 2019, Algorithm 1).

    For each level sigma_i of the model, largest first, alpha_i = epsilon sigma_i^2 /
    sigma_L^2 and `steps_per_level` (T) steps

        x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z,    z ~ N(0, I),

    from uniform noise over `clip` (or `x0`). Iterates are not clipped. final_denoise: one
    last x + sigma_L^2 s(x, sigma_L), Tweedie's estimate of the clean image, which removes
    the noise the chain still carries (Song and Ermon 2020; Jolicoeur-Martineau et al.
    2021); the result is clipped to `clip`, the data range. The injected noise of step k
    is a stateless draw for all n chains keyed by (seed, k), so a seed gives the same
    samples whatever `batch_size` (the chains run per forward pass; each level's T steps
    are one compiled loop). return_chain: also return the (L + 1, n, ...) iterates: the
    start, then the state after each level (before the final denoising step).
    """
    if not is_noise_conditional(model):
        name = getattr(model, "registered_name", type(model).__name__)
        raise NotGenerativeError(
            f"model {name!r} has no noise-conditional score for annealed Langevin; train an "
            "ncsn, or use langevin() on a dae's single-sigma score"
        )
    _check_counts(n=n, steps_per_level=steps_per_level, batch_size=batch_size)
    _check_positive("epsilon", epsilon)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise KerasaeError(f"seed must be an integer, got {seed!r}")
    sigmas = np.asarray(model.sigmas, dtype="float64")
    low, high = clip if clip is not None else (0.0, 1.0)
    x = _start(model, n, x0, np.random.default_rng(seed), low, high)
    level = _compiled_level(model)
    seed_t, steps_t, n_t = (tf.constant(v, "int64") for v in (seed, steps_per_level, n))

    def run(fn, x):  # per batch of chains
        return np.concatenate(
            [
                np.asarray(fn(tf.constant(x[i : i + batch_size]), i))
                for i in range(0, n, batch_size)
            ]
        )

    chain = [x] if return_chain else None
    for i, sigma in enumerate(sigmas):
        alpha = tf.constant(epsilon * sigma**2 / sigmas[-1] ** 2, "float32")
        s, k0 = tf.constant(sigma, "float32"), tf.constant(i * steps_per_level, "int64")
        x = run(
            lambda xb, start, s=s, alpha=alpha, k0=k0: level(
                xb, n_t, tf.constant(start, "int64"), s, alpha, seed_t, k0, steps_t
            ),
            x,
        )
        if return_chain:
            chain.append(x)
    if final_denoise:
        last = tf.constant(sigmas[-1], "float32")
        x = run(lambda xb, _: xb + last**2 * model.score_at(xb, last), x)
    if clip is not None:
        x = np.clip(x, low, high)
    return (x, np.stack(chain)) if return_chain else x


def _compiled_level(model):
    """T Langevin steps at one level as one tf.function, kept on the model (traced once,
    not once per call)."""
    cached = getattr(model, "_annealed_langevin_level", None)
    if cached is not None:
        return cached

    scalar = [
        tf.TensorSpec((), "int64"),
        tf.TensorSpec((), "int64"),
        tf.TensorSpec((), "float32"),
        tf.TensorSpec((), "float32"),
        tf.TensorSpec((), "int64"),
        tf.TensorSpec((), "int64"),
        tf.TensorSpec((), "int64"),
    ]

    @tf.function(input_signature=[tf.TensorSpec((None, *model.data_shape), "float32"), *scalar])
    def level(x, n, start, sigma, alpha, seed, first_step, steps):
        full = tf.concat([tf.reshape(n, (1,)), tf.shape(x, out_type="int64")[1:]], 0)

        def body(k, x):
            # noise for all n chains, sliced to this batch: independent of the batching
            z = tf.random.stateless_normal(full, seed=tf.stack([seed, k]))
            z = tf.reshape(z[start : start + tf.shape(x, out_type="int64")[0]], tf.shape(x))
            return k + 1, x + alpha / 2 * model.score_at(x, sigma) + tf.sqrt(alpha) * z

        end = first_step + steps
        return tf.while_loop(lambda k, x: k < end, body, (first_step, x))[1]

    try:  # object's own setattr: Keras would try to track the function as state
        object.__setattr__(model, "_annealed_langevin_level", level)
    except (AttributeError, TypeError):  # a model that takes no attributes: compile per call
        pass
    return level


def _check_counts(**values):
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise KerasaeError(f"{key} must be a positive integer, got {value!r}")


def _check_positive(what, value):
    if isinstance(value, bool) or not (
        isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    ):
        raise KerasaeError(f"{what} must be a positive number, got {value!r}")


def _start(model, n, x0, rng, low, high):
    """Uniform noise over [low, high] in the model's data shape, or `x0` checked."""
    shape = tuple(model.data_shape)
    if x0 is None:
        return rng.uniform(low, high, size=(n, *shape)).astype("float32")
    x = np.asarray(x0, dtype="float32")
    if x.shape != (n, *shape):
        raise KerasaeError(f"x0 must have shape {(n, *shape)}, got {x.shape}")
    return x
