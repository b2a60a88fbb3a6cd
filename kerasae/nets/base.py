"""The network-builder contract: an `Architecture` builds an encoder and a decoder for a shape.

An architecture (`mlp`, `conv`, a plugin's own) is registered in the `kerasae.architectures`
entry-point group; every family that takes `architecture=NAME` builds its networks through
it. It gets the family's network options as keyword arguments (`hidden_units`, `filters`,
`kernel_size`, `activation`) and may ignore those it does not use.
"""

import math

import keras
from keras import layers

from kerasae.errors import KerasaeError


class Architecture:
    """Builds a family's networks (subclass it and list it under `kerasae.architectures`).

    `features(x, **body)` is the encoder body on a Keras tensor (before the heads);
    `decoder_body(z, output_shape, **body)` maps the code to a tensor of
    prod(output_shape) values (or that shape). `check(input_shape, ...)` refuses, with a
    one-line KerasaeError, data it cannot take."""

    name = None  # set by the registry

    def check(self, input_shape, code="dense", latent_dim=None, filters=None):
        if code != "dense":
            raise KerasaeError(
                f"code={code!r} applies to the conv architecture, not {self.name!r}"
            )

    def features(self, x, prefix="enc", flatten=True, **body):
        raise NotImplementedError

    def decoder_body(self, z, output_shape, code="dense", **body):
        raise NotImplementedError

    def encoder(
        self, input_shape, latent_dim, name="encoder", output_names=("z",), code="dense", **body
    ):
        """A keras.Model from x to one linear head of size `latent_dim` per output name."""
        inputs = keras.Input(shape=tuple(input_shape), name="x")
        h = self.features(inputs, **body)
        outputs = [layers.Dense(latent_dim, name=out)(h) for out in output_names]
        return keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=name)

    def decoder(
        self,
        latent_dim,
        output_shape,
        output_activation="sigmoid",
        name="decoder",
        code="dense",
        **body,
    ):
        """A keras.Model from z to x_hat with the data's shape, ending in an activation
        named x_hat (sigmoid for data in [0, 1]; a VAE reads the logits before it)."""
        output_shape = tuple(output_shape)
        z = keras.Input(shape=(latent_dim,), name="z")
        x = self.decoder_body(z, output_shape, code=code, **body)
        x = layers.Reshape(output_shape)(x)
        x = layers.Activation(output_activation, dtype="float32", name="x_hat")(x)
        return keras.Model(z, x, name=name)


def flat_size(shape):
    return math.prod(tuple(shape))
