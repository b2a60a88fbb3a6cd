"""`NetworkAutoencoder`: a family whose networks are an encoder and a decoder, built by an
architecture (`kerasae.nets`) or brought by the user.

    kerasae.create_model("vae", input_shape=(28, 28, 1), latent_dim=16,
                         encoder=my_encoder, decoder=my_decoder)

The user's networks are plain Keras models (or a `.keras` file, or the serialized form
config.json keeps): the encoder maps x of `input_shape` to the code (a probabilistic family:
to [mean, log_var]), the decoder maps a code of `latent_dim` back to `input_shape`. Their
shapes are checked once, up front, by calling them on a batch of zeros; they are
serialized inside the model's config, as keras-hub serializes a backbone inside its task,
so the model saves to and loads from `model.keras` with safe_mode on and resumes from
config.json. pythae's `BaseAE(model_config, encoder, decoder)` allows the same.
"""

import keras
import numpy as np

import kerasae.nets as nets
from kerasae.errors import KerasaeError
from kerasae.models.base import Autoencoder


class NetworkAutoencoder(Autoencoder):
    """A family built from an encoder and a decoder: the architecture's, or the user's."""

    def __init__(
        self,
        *,
        architecture="mlp",
        hidden_units=(512, 256),
        filters=None,
        kernel_size=3,
        activation="relu",
        encoder=None,
        decoder=None,
        **kwargs,
    ):
        """`architecture`: a registered network builder (`kerasae list --kind
        architectures`: mlp, conv, a plugin's), shaped by `hidden_units` (mlp), `filters`
        and `kernel_size` (conv, None: from the image size) and `activation`.
        `encoder`, `decoder`: your own Keras models instead (or a .keras file)."""
        super().__init__(**kwargs)
        self.architecture = architecture
        self.hidden_units = tuple(hidden_units) if hidden_units is not None else ()
        self.filters, self.kernel_size, self.activation = filters, int(kernel_size), activation
        self.given_encoder = load_network(encoder, "encoder")
        self.given_decoder = load_network(decoder, "decoder")
        self.record_config(encoder=self.given_encoder, decoder=self.given_decoder)

    @property
    def custom_networks(self):
        """True when the user brought the encoder, the decoder or both."""
        return self.given_encoder is not None or self.given_decoder is not None

    def resolve_networks(self, base=32, code="dense"):
        """Resolve `filters` (None: from the image size, from `base` wide) and check the
        architecture against the data, unless the user brought both networks."""
        self.filters = nets.resolve_filters(self.filters, self.data_shape, base=base)
        self.record_config(filters=self.filters)
        if self.given_encoder is None or self.given_decoder is None:
            nets.check_architecture(
                self.architecture,
                self.data_shape,
                code=code,
                latent_dim=self.latent_dim,
                filters=self.filters,
            )

    def network_options(self, **overrides):
        """The options an architecture builds with: hidden_units, filters, kernel_size,
        activation (an architecture ignores those it does not use)."""
        return {
            "hidden_units": self.hidden_units,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            **overrides,
        }

    def build_encoder(self, output_names=("z",), **overrides):
        """The user's encoder (checked: x -> one code per output name), else the
        architecture's."""
        if self.given_encoder is not None:
            return check_encoder(
                self.given_encoder, self.data_shape, self.latent_dim, len(output_names)
            )
        return nets.build_encoder(
            self.data_shape,
            self.latent_dim,
            self.architecture,
            output_names=output_names,
            **self.network_options(**overrides),
        )

    def build_decoder(self, **overrides):
        """The user's decoder (checked: code -> x), else the architecture's."""
        if self.given_decoder is not None:
            return check_decoder(self.given_decoder, self.data_shape, self.latent_dim)
        return nets.build_decoder(
            self.latent_dim,
            self.data_shape,
            self.architecture,
            **self.network_options(**overrides),
        )

    def get_config(self):
        config = super().get_config()
        for key in ("encoder", "decoder"):
            if config.get(key) is not None:
                config[key] = keras.saving.serialize_keras_object(config[key])
        return config


def load_network(network, role):
    """A user's network: a Keras model, the serialized form config.json holds, or a .keras
    file; None stays None."""
    if network is None or isinstance(network, keras.Model):
        return network
    if isinstance(network, dict):
        try:
            network = keras.saving.deserialize_keras_object(network, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - Keras raises what it likes
            raise KerasaeError(
                f"the {role} in this config cannot be rebuilt "
                f"({str(exc).splitlines()[0]}); pass the Keras model itself"
            ) from None
    elif isinstance(network, str) and network.endswith(".keras"):
        try:
            network = keras.saving.load_model(network, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001
            raise KerasaeError(
                f"{role}={network!r} is not a loadable .keras file "
                f"({str(exc).splitlines()[0]}); save it with model.save"
            ) from None
    if not isinstance(network, keras.Model):
        raise KerasaeError(
            f"{role} must be a keras.Model (or a .keras file), got {type(network).__name__}"
        )
    return network


def _shapes(outputs):
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [tuple(np.shape(o)) for o in outputs]


def _call(network, x, role, expects):
    try:
        return network(x, training=False)
    except Exception as exc:  # noqa: BLE001 - whatever the user's network raises
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KerasaeError(
            f"the {role} cannot take {expects} ({first[:200]}); build it for that input"
        ) from None


def check_encoder(encoder, input_shape, latent_dim, heads=1):
    """`encoder` if it maps a batch of `input_shape` to `heads` codes of `latent_dim`."""
    out = _call(
        encoder,
        np.zeros((2, *input_shape), "float32"),
        "encoder",
        f"inputs of shape {tuple(input_shape)}",
    )
    want = [(2, latent_dim)] * heads
    if _shapes(out) != want:
        what = "one code" if heads == 1 else f"{heads} outputs (mean and log-variance)"
        raise KerasaeError(
            f"the encoder must return {what} of shape (batch, {latent_dim}), "
            f"got {', '.join(str((None, *s[1:])) for s in _shapes(out))}; "
            f"give it {heads} Dense({latent_dim}) output(s)"
        )
    return encoder


def check_decoder(decoder, input_shape, latent_dim):
    """`decoder` if it maps a batch of codes of `latent_dim` to `input_shape`."""
    out = _call(
        decoder, np.zeros((2, latent_dim), "float32"), "decoder", f"codes of shape ({latent_dim},)"
    )
    if _shapes(out) != [(2, *input_shape)]:
        raise KerasaeError(
            f"the decoder must return one tensor of shape (batch, "
            f"{', '.join(map(str, input_shape))}), got "
            f"{', '.join(str((None, *s[1:])) for s in _shapes(out))}"
        )
    return decoder


def logits_of(decoder):
    """(the decoder's sigmoid input as a model: its logits) of a decoder that ends in
    `keras.layers.Activation("sigmoid")`, as kerasae's own do; KerasaeError otherwise."""
    last = decoder.layers[-1] if getattr(decoder, "layers", None) else None
    sigmoid = keras.activations.get("sigmoid")
    if not (
        isinstance(last, keras.layers.Activation)
        and last.activation is sigmoid
        and getattr(decoder, "inputs", None)
    ):
        raise KerasaeError(
            "with likelihood='bernoulli' the decoder must end in "
            "keras.layers.Activation('sigmoid') (the likelihood reads the "
            "logits before it): add that layer, or use likelihood='gaussian'"
        )
    return keras.Model(decoder.inputs, last.input, name="decoder_logits")


def resolve_architecture(architecture, data_shape):
    """ "auto" -> "conv" for images (2-D or 3-D examples), "mlp" otherwise."""
    if architecture == "auto":
        return "conv" if len(tuple(data_shape)) in (2, 3) else "mlp"
    return architecture
