"""`vae_iaf`: the VAE with an inverse autoregressive flow (Kingma, Salimans, Jozefowicz,
Chen, Sutskever and Welling, "Improved Variational Inference with Inverse Autoregressive
Flow", NeurIPS 2016).

The Gaussian posterior q_0(z|x) is followed by `n_made_blocks` IAF steps, each a MADE
(Germain et al. 2015, `kerasae.nets.made`) of `n_hidden_in_made` hidden layers of
`hidden_size` units giving [m, s] = MADE(z), and the paper's numerically stable update
(its algorithm 1): sigma = sigmoid(s), z <- sigma z + (1 - sigma) m, whose Jacobian is
triangular with log|det| = sum log sigma. MADE's order is reversed between steps. The loss
is the negative ELBO of the flow posterior,

    -log p(x|z_T) + beta [log q_0(z_0|x) - sum_t sum_i log sigma_t,i - log p(z_T)],

one draw per example, prior N(0, I) (`kerasae.models.flow_vae`). Defaults are pythae's
VAE_IAF (2 MADE blocks, 3 hidden layers of 128). As in pythae, the MADEs see z only: the
paper's context h from the encoder is not an input. s is offset by +1 (`gate_bias` of
`kerasae.nets.flows.IAFStep`) so each step starts near the identity, as the paper
advises; pythae instead uses the affine form z <- (z - m) exp(-s). The flow is in the
exported encoder: its first output is the flow applied to z_mean.
"""

from kerasae.errors import KerasaeError
from kerasae.models.flow_vae import FlowVAE
from kerasae.models.registry import register_model


@register_model("vae_iaf")
class VAEIAF(FlowVAE):
    """VAE with an inverse autoregressive flow (Kingma et al. 2016) of MADE blocks."""

    tiny_config = {
        "latent_dim": 2,
        "hidden_units": (16,),
        "filters": (4, 8),
        "n_made_blocks": 2,
        "n_hidden_in_made": 1,
        "hidden_size": 8,
    }

    def __init__(self, *, n_made_blocks=2, n_hidden_in_made=3, hidden_size=128, **kwargs):
        """`n_made_blocks`: IAF steps (MADE order reversed between them); each MADE has
        `n_hidden_in_made` hidden layers of `hidden_size` units (pythae's VAE_IAF: 2, 3, 128)."""
        for name, value, least in (
            ("n_made_blocks", n_made_blocks, 1),
            ("n_hidden_in_made", n_hidden_in_made, 0),
            ("hidden_size", hidden_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise KerasaeError(f"{name} must be an integer >= {least}, got {value!r}")
        super().__init__(**kwargs)
        self.n_made_blocks = n_made_blocks
        self.n_hidden_in_made, self.hidden_size = n_hidden_in_made, hidden_size

    def flow_spec(self):
        args = self.arguments
        return {
            "flows": ("iaf",) * args["n_made_blocks"],
            "iaf_hidden_units": (args["hidden_size"],) * args["n_hidden_in_made"],
        }
