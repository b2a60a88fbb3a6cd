"""`wae`: the Wasserstein autoencoder (Tolstikhin, Bousquet, Gelly and Schoelkopf, ICLR 2018).

Minimises reconstruction cost + lambda * D(q(z), p(z)), a relaxation of the optimal
transport cost between the data and the model, with a deterministic encoder. `variant`
picks the divergence D on the latent:

- `critic` (default): W1 through its Kantorovich-Rubinstein dual, sup over 1-Lipschitz f of
  E_p[f] - E_q[f], with the Lipschitz constraint enforced by the gradient penalty of
  Gulrajani et al. 2017 (interpolation weight t ~ U[0, 1]). Unlike JS, W1 stays informative
  when q and p barely overlap, so the encoder always gets a useful gradient.
- `gan`: WAE-GAN, the paper's JS discriminator on z (the AAE loss inside the WAE objective),
  with the gradient penalty as a stabiliser (Fedus et al. 2018; `gp_weight=0` turns it off).
- `mmd`: WAE-MMD, the unbiased MMD with the multi-scale inverse multiquadric kernel
  (`kernel="rbf"` for a Gaussian one); no discriminator, no second optimizer.

The training loop is `AdversarialAutoencoder`'s, written once.
"""

from kerasae.errors import KerasaeError
from kerasae.models.networks import resolve_architecture
from kerasae.models.prior_matching import PriorMatchingAutoencoder
from kerasae.models.registry import register_model

VARIANTS = {"critic": "critic", "gan": "js", "mmd": "mmd"}  # variant -> divergence
DEFAULT_REG_WEIGHT = {
    "critic": {"conv": 0.003, "mlp": 0.003},
    "gan": {"conv": 0.003, "mlp": 0.003},
    "mmd": {"conv": 0.1, "mlp": 0.005},
}
DEFAULT_N_CRITIC = {"critic": 5, "gan": 2, "mmd": 1}


@register_model("wae")
class WAE(PriorMatchingAutoencoder):
    """Wasserstein autoencoder: W1 critic (default), JS discriminator or MMD on the latent."""

    tiny_config = {
        "latent_dim": 2,
        "architecture": "mlp",
        "hidden_units": (16,),
        "disc_units": (16,),
        "n_critic": 2,
    }

    def __init__(self, *, variant="critic", n_critic=None, **kwargs):
        """`n_critic` and `reg_weight` (lambda) default per variant (None): critic 5 and
        0.003, gan 2 and 0.003, mmd 0.1 for conv networks and 0.005 for mlp ones
        (Fashion-MNIST pilots, BENCHMARKS.md); `gp_weight` weighs the gradient penalty of
        the critic (and of the gan discriminator, as a stabiliser)."""
        if variant not in VARIANTS:
            raise KerasaeError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        self.variant = variant
        super().__init__(
            divergence=VARIANTS[variant],
            n_critic=DEFAULT_N_CRITIC[variant] if n_critic is None else n_critic,
            **kwargs,
        )

    def default_reg_weight(self, architecture):
        weights = DEFAULT_REG_WEIGHT[self.variant]
        return weights.get(resolve_architecture(architecture, self.data_shape), weights["conv"])
