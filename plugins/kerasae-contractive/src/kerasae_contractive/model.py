"""`cae`: the contractive autoencoder (Rifai, Vincent, Muller, Glorot and Bengio, ICML 2011).

    loss = reconstruction(x, g(f(x))) + lam * ||J_f(x)||_F^2 / D,   J_f(x) = dz/dx

Penalising the squared Frobenius norm of the encoder's Jacobian makes the code locally
insensitive to input directions the data does not vary along, while reconstruction keeps
it sensitive to the ones it does: the code "contracts" around the data manifold. Both
terms are per input feature (kerasae's reconstruction loss is a mean over the D input
values where the paper sums them), so `lam` means what it means in the paper.

The paper's encoder is one sigmoid layer, whose Jacobian has a closed form; here the
encoder may be any MLP (`hidden_units`), so the penalty is the exact Jacobian from
autodiff (`batch_jacobian`: `latent_dim` backward passes per step, cheap for the small
codes an autoencoder has). `hidden_units=()` gives the paper's one-layer model.

Written only against kerasae's plugin API: `Autoencoder`, `register_model`, `kerasae.nets`.
"""

import keras
import tensorflow as tf

from kerasae import nets, register_model
from kerasae.errors import KerasaeError
from kerasae.models.base import Autoencoder


def jacobian_penalty(encoder, x, training=False):
    """(per-example ||dz/dx||_F^2 of shape (batch,), z): exact, by autodiff."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = encoder(x, training=training)
    jac = tape.batch_jacobian(z, x)  # (batch, latent_dim, *input_shape)
    return tf.reduce_sum(tf.square(tf.reshape(jac, (tf.shape(jac)[0], -1))), axis=1), z


@register_model("cae")
class CAE(Autoencoder):
    """Contractive autoencoder: reconstruction + lam * ||d code / d input||_F^2 (Rifai 2011)."""

    # Each name gets a Mean tracker, so all three terms appear in history.csv.
    loss_names = ("loss", "reconstruction", "contractive")
    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}
    kerasae_api_version = 2  # the plugin API this was written for; kerasae warns on mismatch

    # Only its own arguments: input_shape, latent_dim and loss come from Autoencoder (the
    # merged signature is the config: --param, get_config, kerasae info).
    def __init__(
        self,
        *,
        hidden_units=(256,),
        activation="relu",
        code_activation="sigmoid",
        lam=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not lam >= 0:
            raise KerasaeError(f"lam must be >= 0 (the penalty's weight), got {lam!r}")
        self.hidden_units = tuple(hidden_units)
        self.lam = float(lam)
        x = keras.Input(shape=self.data_shape, name="x")
        h = nets.features(x, "mlp", hidden_units=self.hidden_units, activation=activation)
        # A saturating code (sigmoid, as in the paper) is what lets the penalty flatten
        # the map away from the data; a linear code can only shrink its weights.
        z = keras.layers.Dense(self.latent_dim, activation=code_activation, name="z")(h)
        self.set_networks(
            keras.Model(x, z, name="encoder"),
            nets.build_decoder(
                self.latent_dim,
                self.data_shape,
                "mlp",
                hidden_units=self.hidden_units,
                activation=activation,
            ),
        )

    def compute_losses(self, x, training=False):
        penalty, z = jacobian_penalty(self.encoder, x, training=training)
        reconstruction = self.reconstruction_loss(x, self.decoder(z, training=training))
        # The reconstruction loss is a mean over input features where the paper sums them;
        # dividing the penalty by the input size too keeps `lam` the paper's trade-off.
        contractive = tf.reduce_mean(penalty) / self.input_size
        return {
            "loss": reconstruction + self.lam * contractive,
            "reconstruction": reconstruction,
            "contractive": contractive,
        }
