"""`sparse_ae`: the sparse autoencoder (Ng, "Sparse autoencoder", CS294A lecture notes, 2011).

A sigmoid code layer whose units are asked to be mostly off: each unit's mean activation
rho_hat_j should equal a small target rho. The penalty is the KL divergence between
Bernoulli(rho) and Bernoulli(rho_hat_j), summed over units (`regularizers.sparsity_kl`):

    loss = reconstruction + sparsity_weight * sum_j KL(rho || rho_hat_j)

rho_hat is the mean activation over the batch (the notes average over the whole
training set, which needs a full pass per step; the batch mean is the usual minibatch
form). Sparsity, not the bottleneck, regularises here, so `latent_dim` may be as large as
the input or larger (overcomplete; the UFLDL MNIST exercise that follows the notes uses
196 units on 784 pixels, the default here).

Scale: the notes' objective is (1/2) ||x - x_hat||^2 summed over pixels, and their
exercise weighs the KL with beta = 3; kerasae's reconstruction loss is the per-pixel mean,
so the same balance is sparsity_weight = 2 beta / input_size (0.0077 for 28x28 images,
0.094 for 8x8). The default, 0.01, is that for 28x28 data, rounded up; pass a larger one
for smaller inputs (Fashion-MNIST pilot, 196 units, rho 0.05, 5 epochs: mean activation
0.065, 0.056 and 0.053 at weights 0.003, 0.01 and 0.03; test MSE 0.021, 0.026, 0.030).
Logged: `loss`, `reconstruction`, `sparsity` (the KL sum) and the metric `mean_activation`
(the mean of rho_hat over units: it should approach rho).
"""

import keras
from keras import layers, ops

import kerasae.nets as nets
from kerasae.errors import KerasaeError
from kerasae.models.networks import NetworkAutoencoder
from kerasae.models.registry import register_model
from kerasae.probability import regularizers


@register_model("sparse_ae")
class SparseAE(NetworkAutoencoder):
    """Sparse autoencoder (Ng 2011): sigmoid code, KL(rho || mean activation) penalty."""

    loss_names = ("loss", "reconstruction", "sparsity")
    metric_names = ("mean_activation",)
    # Fashion-MNIST pilot (20k images, 5 epochs, the defaults): test MSE 0.0258 at 3e-3
    # against 0.0391 at 1e-3, mean activation 0.056 and 0.060 (rho 0.05)
    default_learning_rate = 3e-3
    tiny_config = {"latent_dim": 32, "hidden_units": (), "filters": (4, 8), "sparsity_weight": 0.1}

    def __init__(
        self, *, latent_dim=196, hidden_units=(), rho=0.05, sparsity_weight=0.01, **kwargs
    ):
        """`rho`: the target mean activation of each code unit; `sparsity_weight` weighs the
        summed KL against the per-pixel mean reconstruction loss (see the module notes);
        `hidden_units=()` is the notes' single hidden layer (the code itself). A brought
        encoder must end in a sigmoid: its activations in (0, 1) are what rho_hat averages."""
        super().__init__(latent_dim=latent_dim, hidden_units=hidden_units, **kwargs)
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho < 1:
            raise KerasaeError(f"rho must be a number strictly between 0 and 1, got {rho!r}")
        if (
            isinstance(sparsity_weight, bool)
            or not isinstance(sparsity_weight, (int, float))
            or sparsity_weight < 0
        ):
            raise KerasaeError(f"sparsity_weight must be a number >= 0, got {sparsity_weight!r}")
        self.rho, self.sparsity_weight = float(rho), float(sparsity_weight)
        self.resolve_networks()
        self.set_networks(self.sigmoid_encoder(), self.build_decoder())

    def sigmoid_encoder(self):
        """The encoder whose code is a sigmoid layer (activations in (0, 1))."""
        if self.given_encoder is not None:
            encoder = self.build_encoder()
            last = encoder.layers[-1] if getattr(encoder, "layers", None) else None
            if getattr(last, "activation", None) is not keras.activations.get("sigmoid"):
                raise KerasaeError(
                    "sparse_ae's encoder must end in a sigmoid (the sparsity "
                    "penalty averages activations in (0, 1)): give its last "
                    "layer activation='sigmoid'"
                )
            return encoder
        x = keras.Input(shape=self.data_shape, name="x")
        z = layers.Dense(self.latent_dim, activation="sigmoid", name="z")(
            nets.features(x, self.architecture, **self.network_options())
        )
        return keras.Model(x, z, name="encoder")

    def compute_losses(self, x, training=False):
        z = self.encoder(x, training=training)
        rec = self.reconstruction_loss(x, self.decoder(z, training=training))
        rho_hat = ops.mean(ops.cast(z, "float32"), axis=0)
        sparsity = regularizers.sparsity_kl(self.rho, rho_hat)
        return {
            "loss": rec + self.sparsity_weight * sparsity,
            "reconstruction": rec,
            "sparsity": sparsity,
            "mean_activation": ops.mean(rho_hat),
        }
