"""Importance-sampled test log-likelihood log p(x) of models with a posterior.

Burda, Grosse and Salakhutdinov, "Importance Weighted Autoencoders" (ICLR 2016), eq. 8,
with the model's own posterior q(z|x) as the proposal:

    log p(x) ~= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x)

a lower bound in expectation that tightens as k grows (k = 5000 in the paper, 1000 here
by default, the usual figure). It is the IWAE bound L_k, evaluated with a large k; k = 1
gives the ELBO. Each example's figure is in nats (the model's likelihood: Bernoulli on
grey levels, as most papers report on MNIST, or Gaussian), and the test set's mean comes
with its standard error over examples (the spread of log p(x) across the test set, not
the Monte Carlo error, which is far smaller at k = 1000).

Memory stays bounded whatever k: the k draws of a few examples are taken in chunks of at
most ELEMENTS / (features per example) decoder rows, and each chunk keeps only its
log-sum-exp. Draws are seeded per (chunk of examples, chunk of draws), so a figure is
repeatable.

A model qualifies when it has `log_weights(x, k, seed)` (`kerasae.models.vae.VAE` and its
subclasses: vae, beta_vae, iwae, beta_tcvae, info_vae, vamp; any other family or plugin
can provide it too).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.io import read_json
from kerasae.models.registry import get_model_class, list_models
from kerasae.runs.data import check_shape, open_data
from kerasae.runs.folder import CONFIG, load_run

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.models.base import Autoencoder

#: values of decoder output (rows x features) per compiled call: 8 MB of float32 outputs,
#: and for a conv decoder with 32 filters at full resolution about 270 MB of activations
ELEMENTS = 2**21


def has_posterior(model_or_class):
    return callable(getattr(model_or_class, "log_weights", None))


def families_with_posterior():
    """Registered names whose class has `log_weights` (modules that fail to load skipped)."""
    names = []
    with warnings.catch_warnings():  # the registry warns about broken plugins: not our news
        warnings.simplefilter("ignore")
        for name in list_models():
            try:
                if has_posterior(get_model_class(name)):
                    names.append(name)
            except Exception:  # a family that does not load here has nothing to offer
                continue
    return names


def check_model(model):
    if not has_posterior(model):
        name = getattr(model, "registered_name", type(model).__name__)
        raise KerasaeError(
            f"model {name!r} has no posterior q(z|x) to importance-sample log p(x) with; "
            f"--log-likelihood works for {', '.join(families_with_posterior())}"
        )


def log_likelihood(
    model: Autoencoder,
    x: np.ndarray | tf.data.Dataset,
    k: int = 1000,
    seed: int = 0,
    rows: int | None = None,
) -> dict:
    """Per-example importance-sampled log p(x) and ELBO in nats, with `k` draws each.

    `x`: an array, or a tf.data.Dataset of batches (e.g. `data.batches("test", 256)`),
    read as it streams. `rows`: decoder rows (examples x draws) per compiled call, the
    memory bound (default: ELEMENTS / the example's size); `seed`: an int, the draws'
    stateless seed (the figures do not depend on how a stream is batched).

    Returns a dict: `log_px` and `elbo` (arrays of shape (n,); the ELBO is the mean log
    weight of the same draws, so log_px >= elbo example by example), their means,
    `stderr` (of the mean log p(x) over the examples), `k` and `n`.
    """
    check_model(model)
    _check_k(k)
    if not hasattr(x, "as_numpy_iterator"):
        x = np.asarray(x, dtype="float32")
    rows = rows or max(64, ELEMENTS // max(1, math.prod(model.data_shape)))
    k_chunk = min(k, rows)
    batch = max(1, rows // k_chunk)
    n_chunks = -(-k // k_chunk)

    @tf.function(reduce_retracing=True)
    def chunk(xb, draws, s):
        log_w = tf.cast(model.log_weights(xb, k=draws, seed=s), "float64")
        return tf.reduce_logsumexp(log_w, axis=1), tf.reduce_sum(log_w, axis=1)

    lse, total = [], []
    for b, block in enumerate(_blocks(x, batch)):
        xb = tf.constant(block)
        parts, sums = [], 0.0
        for c, first in enumerate(range(0, k, k_chunk)):
            draws = min(k_chunk, k - first)
            chunk_seed = tf.constant([seed, b * n_chunks + c], "int32")  # one per chunk
            part, s = chunk(xb, draws, chunk_seed)
            parts.append(part.numpy())
            sums = sums + s.numpy()
        lse.append(np.logaddexp.reduce(np.stack(parts, axis=1), axis=1) - math.log(k))
        total.append(sums / k)
    if not lse:
        raise KerasaeError("no examples to evaluate the log-likelihood on")
    log_px, elbo = np.concatenate(lse), np.concatenate(total)
    n = len(log_px)
    stderr = float(np.std(log_px, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return {
        "log_px": log_px,
        "elbo": elbo,
        "mean": float(np.mean(log_px)),
        "elbo_mean": float(np.mean(elbo)),
        "stderr": stderr,
        "k": k,
        "n": n,
    }


def _blocks(x, size):
    """Consecutive blocks of `size` examples (the last may be smaller) of an array or of a
    stream of batches: the same blocks, so the same seeds, however the stream is batched."""
    if isinstance(x, np.ndarray):
        yield from (x[i : i + size] for i in range(0, len(x), size))
        return
    pending, count = [], 0
    for batch in x.as_numpy_iterator():
        batch = np.asarray(batch, dtype="float32")
        while len(batch):
            take = batch[: size - count]
            pending.append(take)
            count += len(take)
            batch = batch[len(take) :]
            if count == size:
                yield np.concatenate(pending)
                pending, count = [], 0
    if pending:
        yield np.concatenate(pending)


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise KerasaeError(f"--k must be a positive integer, got {k!r}")


def evaluate_run(run_dir, dataset=None, k=1000, seed=0):
    """The test split's log-likelihood of a finished run: {"nats", "stderr", "elbo", "k", "n"}."""
    _check_k(k)
    path = os.path.join(run_dir, CONFIG)
    if os.path.isfile(path):  # refuse a family without a posterior before loading anything
        try:
            cls = get_model_class(read_json(path)["model"])
        except Exception:
            cls = None  # load_run below gives the precise error
        if cls is not None and not has_posterior(cls):
            check_model(cls)
    config, model = load_run(run_dir)
    check_model(model)
    data = open_data(config, dataset, scaling=config.get("scaling"))
    check_shape(data, model)
    result = log_likelihood(model, data.batches("test", 256), k=k, seed=seed)
    return {
        "nats": result["mean"],
        "stderr": result["stderr"],
        "elbo": result["elbo_mean"],
        "k": result["k"],
        "n": result["n"],
    }
