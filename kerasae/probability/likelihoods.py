"""Reconstruction losses and decoder likelihoods, each written once in plain ops.

The Bernoulli and Gaussian negative log-likelihoods are the decoder terms of the
variational families (Kingma and Welling 2014); training and the export's `scorer.onnx`
evaluate the same functions, so tf2onnx must convert every op here (it has no Expm1,
Log1p or MulNoNan, which tensorflow-probability's `log_prob` uses). Sums of many pixels run
in float32 (float64 kept), never float16: summing 784 log-probs in float16 loses nats.
"""

import math

import keras
from keras import ops

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def flat_float(t):
    """(batch, features) in float32 (float64 kept), even under mixed precision."""
    t = ops.cast(t, "float64" if t.dtype == "float64" else "float32")
    return ops.reshape(t, (ops.shape(t)[0], -1))


def per_example_error(x, x_hat):
    """Mean squared error per example, averaged over features: shape (batch,)."""
    return ops.mean(ops.square(flat_float(x) - flat_float(x_hat)), axis=-1)


def per_example_bce(x, x_hat):
    """Binary cross-entropy per example on probabilities, averaged over features."""
    return ops.mean(
        keras.losses.binary_crossentropy(
            ops.expand_dims(flat_float(x), -1), ops.expand_dims(flat_float(x_hat), -1)
        ),
        axis=-1,
    )


def reconstruction_loss(x, x_hat, kind="mse"):
    """Batch mean of the per-example reconstruction loss ("mse" or "bce")."""
    per_example = per_example_error if kind == "mse" else per_example_bce
    return ops.mean(per_example(x, x_hat))


def bernoulli_nll(x, logits):
    """-log Bernoulli(x; sigmoid(logits)) per example, summed over features, in nats.

    softplus(l) - x l: on the logits, never on sigmoid outputs, so saturated pixels cost
    finite, exact nats. Grey levels in [0, 1] are soft targets, the usual (if improper)
    choice for MNIST-like data."""
    x, logits = flat_float(x), flat_float(logits)
    return ops.sum(ops.softplus(logits) - x * logits, axis=-1)


def gaussian_nll(x, mean, log_scale):
    """-log N(x; mean, exp(log_scale)^2) per example, summed over features, in nats
    (`log_scale`: one shared scale, or one per feature)."""
    x, mean = flat_float(x), flat_float(mean)
    log_scale = ops.cast(log_scale, x.dtype)
    return ops.sum(
        0.5 * ops.square((x - mean) / ops.exp(log_scale)) + log_scale + HALF_LOG_2PI, axis=-1
    )
