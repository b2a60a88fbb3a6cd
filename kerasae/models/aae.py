"""`aae`: the adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow and Frey, 2015).

A deterministic autoencoder whose aggregated posterior q(z) is matched to a prior p(z) by a
GAN on the latent: a discriminator learns to tell prior draws (label 1) from codes (label
0) with binary cross-entropy, whose optimum is 2 JS(p || q) - 2 log 2, and the encoder is
trained to fool it. Priors: `gaussian`, `mixture` (k Gaussians on a circle, the paper's
figure 4) and `uniform`. The training loop is `AdversarialAutoencoder`'s, written once.
"""

from kerasae.models.prior_matching import PriorMatchingAutoencoder
from kerasae.models.registry import register_model

DEFAULT_REG_WEIGHT = {"conv": 0.005, "mlp": 0.00128}


@register_model("aae")
class AAE(PriorMatchingAutoencoder):
    """Adversarial autoencoder: a JS discriminator on z matches the codes to the prior."""

    tiny_config = {
        "latent_dim": 2,
        "architecture": "mlp",
        "hidden_units": (16,),
        "disc_units": (16,),
    }

    def default_reg_weight(self, architecture):
        """lambda against the per-pixel mean reconstruction loss: 0.005 for conv networks,
        0.00128 for mlp (`gp_weight` is a stabiliser the paper did not use: 0 gives its
        exact loss)."""
        return DEFAULT_REG_WEIGHT.get(architecture, DEFAULT_REG_WEIGHT["conv"])
