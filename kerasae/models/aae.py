"""`aae`: the adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow and Frey, 2015).

A deterministic autoencoder whose aggregated posterior q(z) is matched to a prior p(z) by a
GAN on the latent: a discriminator learns to tell prior draws (label 1) from codes (label
0) with binary cross-entropy, whose optimum is 2 JS(p || q) - 2 log 2, and the encoder is
trained to fool it. Priors: `gaussian`, `mixture` (k Gaussians on a circle, the paper's
figure 4) and `uniform`. The training loop is `AdversarialAutoencoder`'s, written once.
"""
from kerasae.models.adversarial import AdversarialAutoencoder, resolve_architecture
from kerasae.models.registry import register_model

#: lambda per architecture. conv: Fashion-MNIST pilots (BENCHMARKS.md, adversarial family).
#: mlp: the weight pythae's AAE puts on its adversarial term (adversarial_loss_scale 0.5
#: against a pixel-summed loss, i.e. 1/784 against kerasae's per-pixel mean): test MSE
#: 0.01139 at one hidden layer of 512, vs 0.01305 at 0.005 (benchmarks/zoo_fashion.py --mlp)
DEFAULT_REG_WEIGHT = {"conv": 0.005, "mlp": 0.00128}


@register_model("aae")
class AAE(AdversarialAutoencoder):
    """Adversarial autoencoder: a JS discriminator on z matches the codes to the prior."""

    tiny_config = {"latent_dim": 2, "architecture": "mlp", "hidden_units": (16,),
                   "disc_units": (16,)}

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, architecture="auto",
                 hidden_units=(512, 256), filters=None, kernel_size=3, activation="relu",
                 prior="gaussian", prior_components=10, disc_units=(256, 256), n_critic=2,
                 reg_weight=None, gp_weight=10.0, kernel="imq", loss="mse", **kwargs):
        """`reg_weight` (lambda) weighs the adversarial term against the per-pixel mean
        reconstruction loss (None: 0.005 for conv networks, 0.00128 for mlp); `gp_weight` is a gradient penalty on the discriminator (a
        stabiliser the paper did not use: 0 gives its exact loss); `kernel` is that of the
        logged `mmd` diagnostic."""
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, loss=loss, **kwargs)
        if reg_weight is None:
            reg_weight = DEFAULT_REG_WEIGHT.get(resolve_architecture(architecture, input_shape),
                                                DEFAULT_REG_WEIGHT["conv"])
        self._build_adversarial(architecture, hidden_units, filters, kernel_size, activation,
                                prior, prior_components, "js", disc_units, n_critic,
                                reg_weight, gp_weight, kernel)
