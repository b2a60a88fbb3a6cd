"""Reconstruction losses and per-example likelihoods shared by every family.
"""
import keras
from keras import ops


def _flat(t):
    t = ops.cast(t, "float32")  # losses are float32 even under mixed precision
    return ops.reshape(t, (ops.shape(t)[0], -1))


def per_example_error(x, x_hat):
    """Mean squared error per example, averaged over features: shape (batch,)."""
    return ops.mean(ops.square(_flat(x) - _flat(x_hat)), axis=-1)


def per_example_bce(x, x_hat):
    """Binary cross-entropy per example on probabilities, averaged over features."""
    return ops.mean(keras.losses.binary_crossentropy(
        ops.expand_dims(_flat(x), -1), ops.expand_dims(_flat(x_hat), -1)), axis=-1)


def reconstruction_loss(x, x_hat, kind="mse"):
    """Batch mean of the per-example reconstruction loss ("mse" or "bce")."""
    per_example = per_example_error if kind == "mse" else per_example_bce
    return ops.mean(per_example(x, x_hat))


def flat_float(t):
    """(batch, features) in float32 (float64 kept): summing 784 log-probs in float16 under
    mixed precision loses nats."""
    t = ops.cast(t, "float64" if t.dtype == "float64" else "float32")
    return ops.reshape(t, (ops.shape(t)[0], -1))
