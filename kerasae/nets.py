"""Encoder and decoder builders shared by every family (MLP and convolutional).

Conv networks follow the DCGAN-style layout most autoencoder papers use: strided
convolutions down, transposed convolutions up, and a crop back to the exact input size,
so 28x28x1, 32x32x3 and 8x8x1 inputs (or any other) all work.
"""
import math

import keras
from keras import layers

ARCHITECTURES = ("mlp", "conv")


def features(x, architecture, hidden_units=(512, 256), filters=(32, 64),
             kernel_size=3, activation="relu", prefix="enc"):
    """The encoder body on a Keras tensor `x`: a flat feature tensor, before any head."""
    if architecture == "conv":
        if len(x.shape) == 2:
            raise ValueError("the conv architecture needs image inputs (height, width, channels)")
        if len(x.shape) == 3:
            x = layers.Reshape((*x.shape[1:], 1))(x)
        for i, f in enumerate(filters):
            x = layers.Conv2D(f, kernel_size, strides=2, padding="same",
                              activation=activation, name=f"{prefix}_conv{i}")(x)
        return layers.Flatten(name=f"{prefix}_flatten")(x)
    x = layers.Flatten(name=f"{prefix}_flatten")(x)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, activation=activation, name=f"{prefix}_dense{i}")(x)
    return x


def build_encoder(input_shape, latent_dim, architecture="mlp", name="encoder",
                  output_names=("z",), **body):
    """A keras.Model from x to one or more linear heads of size `latent_dim` each."""
    inputs = keras.Input(shape=tuple(input_shape), name="x")
    h = features(inputs, architecture, **body)
    outputs = [layers.Dense(latent_dim, name=out)(h) for out in output_names]
    return keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=name)


def build_decoder(latent_dim, output_shape, architecture="mlp", hidden_units=(512, 256),
                  filters=(32, 64), kernel_size=3, activation="relu",
                  output_activation="sigmoid", name="decoder"):
    """A keras.Model from z to x_hat with the data's shape (sigmoid output for [0, 1] data)."""
    output_shape = tuple(output_shape)
    z = keras.Input(shape=(latent_dim,), name="z")
    if architecture == "conv":
        height, width = output_shape[0], output_shape[1]
        channels = output_shape[2] if len(output_shape) == 3 else 1
        steps = len(filters)
        h0, w0 = _downsampled(height, steps), _downsampled(width, steps)
        x = layers.Dense(h0 * w0 * filters[-1], activation=activation, name="dec_dense")(z)
        x = layers.Reshape((h0, w0, filters[-1]))(x)
        for i, f in enumerate(reversed(filters)):
            x = layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same",
                                       activation=activation, name=f"dec_deconv{i}")(x)
        x = layers.Conv2D(channels, kernel_size, padding="same", name="dec_out")(x)
        extra_h, extra_w = h0 * 2 ** steps - height, w0 * 2 ** steps - width
        if extra_h or extra_w:
            x = layers.Cropping2D(((0, extra_h), (0, extra_w)))(x)
    else:
        x = z
        for i, units in enumerate(reversed(tuple(hidden_units))):
            x = layers.Dense(units, activation=activation, name=f"dec_dense{i}")(x)
        x = layers.Dense(math.prod(output_shape), name="dec_out")(x)
    x = layers.Reshape(output_shape)(x)
    x = layers.Activation(output_activation, dtype="float32", name="x_hat")(x)
    return keras.Model(z, x, name=name)


def _downsampled(size, steps):
    for _ in range(steps):
        size = math.ceil(size / 2)
    return size


def check_architecture(architecture, input_shape):
    from kerasae.errors import KerasaeError

    if architecture not in ARCHITECTURES:
        raise KerasaeError(f"architecture must be one of {', '.join(ARCHITECTURES)}, "
                           f"got {architecture!r}")
    if architecture == "conv" and len(input_shape) not in (2, 3):
        raise KerasaeError(
            f"the conv architecture needs image data (height, width[, channels]); this data "
            f"has shape {tuple(input_shape)}: use architecture='mlp' or the ae model")
