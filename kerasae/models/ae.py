"""`ae`: the dense undercomplete autoencoder (Hinton and Salakhutdinov, Science 2006).

An MLP encoder to a linear bottleneck smaller than the input, a mirrored MLP decoder,
trained to minimise reconstruction error. The reference every other family builds on.
"""

from kerasae.models.networks import NetworkAutoencoder
from kerasae.models.registry import register_model


@register_model("ae")
class AE(NetworkAutoencoder):
    """Dense undercomplete autoencoder: MLP encoder, linear bottleneck, mirrored MLP decoder."""

    tiny_config = {"latent_dim": 2, "hidden_units": (16,)}
    # Fashion-MNIST, one hidden layer of 512, 10 epochs (benchmarks/zoo_fashion.py --mlp
    # --pilot): test MSE 0.01063 at 2e-3 vs 0.01093 at 1e-3 (pythae: 0.01085)
    default_learning_rate = 2e-3

    fixed_params = ("architecture", "filters", "kernel_size")  # always an MLP

    def __init__(self, **kwargs):
        super().__init__(architecture="mlp", **kwargs)
        self._check_undercomplete()
        self.set_networks(self.build_encoder(), self.build_decoder())
