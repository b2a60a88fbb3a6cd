"""`v1_demo`: an autoencoder with an L2 code penalty, written against plugin API 1.

(The penalty is the code term of Ghosh et al. 2020's RAE; here it only exercises the API.)
"""

import keras
from keras import ops

from kerasae import nets, register_model
from kerasae.models.base import Autoencoder


@register_model("v1_demo")
class V1Demo(Autoencoder):
    """API-1 plugin: reconstruction + code_weight * ||z||^2, code norm logged as a loss."""

    loss_names = ("loss", "reconstruction", "code_norm")  # API 1: diagnostics live here
    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}
    kerasae_api_version = 1

    def __init__(
        self,
        input_shape=(28, 28, 1),
        latent_dim=16,
        hidden_units=(64,),
        code_weight=0.01,
        loss="mse",
        **kwargs,
    ):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, loss=loss, **kwargs)
        self.code_weight = float(code_weight)
        x = keras.Input(shape=self.data_shape, name="x")
        h = nets.features(x, "mlp", hidden_units=tuple(hidden_units))
        z = keras.layers.Dense(self.latent_dim, name="z")(h)
        self._set_networks(
            keras.Model(x, z, name="encoder"),
            nets.build_decoder(
                self.latent_dim, self.data_shape, "mlp", hidden_units=tuple(hidden_units)
            ),
        )

    def compute_losses(self, x, training=False):
        z = self.encoder(x, training=training)
        rec = self.reconstruction_loss(x, self.decoder(z, training=training))
        norm = ops.mean(ops.sum(ops.square(z), axis=-1))
        return {"loss": rec + self.code_weight * norm, "reconstruction": rec, "code_norm": norm}
