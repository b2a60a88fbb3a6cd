"""Encoder and decoder builders shared by every family, by architecture name.

    nets.build_encoder(input_shape, latent_dim, "conv", filters=(32, 64))
    nets.build_decoder(latent_dim, output_shape, "mlp", hidden_units=(512, 256))

Each name is an `Architecture` in the `kerasae.architectures` registry: kerasae's `mlp`
(`kerasae.nets.mlp`) and `conv` (`kerasae.nets.conv`, with its `spatial` code) or a
plugin's own.
"""

from kerasae.errors import KerasaeError
from kerasae.nets.conv import CODES
from kerasae.nets.registry import ARCHITECTURES
from kerasae.nets.registry import architecture as builder


def features(x, architecture, prefix="enc", flatten=True, **body):
    """The encoder body on a Keras tensor `x`: a flat feature tensor, before any head
    (for conv with `flatten=False`: the last strided convolution's feature map)."""
    return builder(architecture).features(x, prefix=prefix, flatten=flatten, **body)


def build_encoder(
    input_shape,
    latent_dim,
    architecture="mlp",
    name="encoder",
    output_names=("z",),
    code="dense",
    **body,
):
    """A keras.Model from x to one or more linear heads of size `latent_dim` each."""
    return builder(architecture).encoder(
        input_shape, latent_dim, name=name, output_names=output_names, code=code, **body
    )


def build_decoder(
    latent_dim,
    output_shape,
    architecture="mlp",
    output_activation="sigmoid",
    name="decoder",
    code="dense",
    **body,
):
    """A keras.Model from z to x_hat with the data's shape (sigmoid output for [0, 1] data)."""
    return builder(architecture).decoder(
        latent_dim, output_shape, output_activation=output_activation, name=name, code=code, **body
    )


def check_architecture(architecture, input_shape, code="dense", latent_dim=None, filters=None):
    """Refuse, with a one-line KerasaeError, an architecture/code the data cannot take."""
    if code not in CODES:
        raise KerasaeError(f"code must be one of {', '.join(CODES)}, got {code!r}")
    if code == "spatial" and architecture != "conv":
        raise KerasaeError(
            "code='spatial' is a grid of conv features: use it with architecture='conv'"
        )
    if architecture not in ARCHITECTURES:
        raise KerasaeError(
            f"architecture must be one of {', '.join(ARCHITECTURES.names())}, got {architecture!r}"
        )
    builder(architecture).check(
        tuple(input_shape), code=code, latent_dim=latent_dim, filters=filters
    )
