"""`mlp`: dense encoder and decoder networks (Hinton and Salakhutdinov, Science 2006).

The encoder flattens x and applies Dense layers of `hidden_units`; the decoder mirrors them
and ends in a Dense layer of the data's size.
"""

from keras import layers

from kerasae.nets.base import Architecture, flat_size
from kerasae.nets.registry import register_architecture


@register_architecture("mlp")
class MLP(Architecture):
    """Dense layers of `hidden_units` (mirrored in the decoder), any input shape."""

    def features(
        self, x, prefix="enc", flatten=True, hidden_units=(512, 256), activation="relu", **body
    ):
        x = layers.Flatten(name=f"{prefix}_flatten")(x)
        for i, units in enumerate(hidden_units):
            x = layers.Dense(units, activation=activation, name=f"{prefix}_dense{i}")(x)
        return x

    def decoder_body(
        self, z, output_shape, code="dense", hidden_units=(512, 256), activation="relu", **body
    ):
        x = z
        for i, units in enumerate(reversed(tuple(hidden_units))):
            x = layers.Dense(units, activation=activation, name=f"dec_dense{i}")(x)
        return layers.Dense(flat_size(output_shape), name="dec_out")(x)
