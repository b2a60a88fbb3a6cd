"""`vae_linnf`: the VAE with planar and radial normalizing flows (Rezende and Mohamed,
"Variational Inference with Normalizing Flows", ICML 2015).

The Gaussian posterior q_0(z|x) is followed by K invertible maps, planar
f(z) = z + u_hat tanh(w.z + b) or radial f(z) = z + beta (z - z0) / (alpha + |z - z0|)
(`kerasae.nets.flows`, with the paper's reparameterisations that keep each map invertible:
w.u_hat > -1, beta >= -alpha). The loss is the negative ELBO of the flow posterior,

    -log p(x|z_K) + beta [log q_0(z_0|x) - sum_k log|det df_k/dz_(k-1)| - log p(z_K)],

one draw per example, prior N(0, I) (`kerasae.models.flow_vae`). As in pythae's VAE_LinNF
(default flows ["Planar", "Planar"]), the flows' parameters are global weights learned with
the networks; the paper amortizes them (the encoder outputs u, w, b per example), which is
not done here. The flows are in the exported encoder: its first output is f(z_mean).
"""

from kerasae.errors import KerasaeError
from kerasae.models.flow_vae import FlowVAE
from kerasae.models.registry import register_model

LINEAR_FLOWS = ("planar", "radial")


@register_model("vae_linnf")
class VAELinNF(FlowVAE):
    """VAE with planar/radial normalizing flows (Rezende and Mohamed 2015), default 2 planar."""

    tiny_config = {
        "latent_dim": 2,
        "hidden_units": (16,),
        "filters": (4, 8),
        "flows": ("planar", "radial"),
    }

    def __init__(self, *, flows=("planar", "planar"), **kwargs):
        """`flows`: the maps after the Gaussian posterior, first to last, each planar or
        radial (pythae's VAE_LinNF default: two planar)."""
        super().__init__(**kwargs)
        self.flows = self.flow_spec()["flows"]

    def flow_spec(self):
        flows = self.arguments["flows"]
        flows = tuple(flows.split(",")) if isinstance(flows, str) else tuple(flows)
        if not flows or any(f not in LINEAR_FLOWS for f in flows):
            raise KerasaeError(
                f"flows must be a non-empty list of planar and radial, got {list(flows)}"
            )
        return {"flows": flows}
