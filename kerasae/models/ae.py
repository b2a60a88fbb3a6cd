"""`ae`: the dense undercomplete autoencoder (Hinton and Salakhutdinov, Science 2006).

An MLP encoder to a linear bottleneck smaller than the input, a mirrored MLP decoder,
trained to minimise reconstruction error. The reference every other family builds on.
"""
from kerasae import nets
from kerasae.models.base import Autoencoder
from kerasae.models.registry import register_model


@register_model("ae")
class AE(Autoencoder):
    """Dense undercomplete autoencoder: MLP encoder, linear bottleneck, mirrored MLP decoder."""

    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}
    # Fashion-MNIST, one hidden layer of 512, 10 epochs (benchmarks/zoo_fashion.py --mlp
    # --pilot): test MSE 0.01063 at 2e-3 vs 0.01093 at 1e-3 (pythae: 0.01085)
    default_learning_rate = 2e-3

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, hidden_units=(512, 256),
                 activation="relu", loss="mse", **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, loss=loss, **kwargs)
        self._check_undercomplete()
        self.hidden_units = tuple(hidden_units)
        self.activation = activation
        self.set_networks(
            nets.build_encoder(self.data_shape, self.latent_dim, "mlp",
                               hidden_units=self.hidden_units, activation=activation),
            nets.build_decoder(self.latent_dim, self.data_shape, "mlp",
                               hidden_units=self.hidden_units, activation=activation))
