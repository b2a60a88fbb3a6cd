"""`iwae`: the importance-weighted autoencoder (Burda, Grosse and Salakhutdinov, ICLR 2016).

The same networks as the VAE, trained on a tighter bound. With k draws z_1..z_k ~ q(z|x)
and log weights log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),

    L_k(x) = log (1/k) sum_i w_i   (computed as logsumexp_i log w_i - log k)

is a lower bound on log p(x) that never decreases with k (L_1 is the ELBO) and tends to
log p(x) as k grows (the paper's theorem 1). The loss is -L_k per example, averaged over
the batch, in nats. Reconstruction and KL are logged as metrics: the per-draw
-log p(x|z) and log q(z|x) - log p(z) averaged over the k draws, whose difference is the
ELBO of the same draws (`elbo`, also a metric; `iwae_bound` >= `elbo` by Jensen).
"""

import math

from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE


def importance_bound(log_w, axis=-1):
    """log (1/k) sum_i exp(log_w_i) along `axis` of length k: the k-draw IWAE bound L_k of
    log importance weights, as a logsumexp (stable for weights far below 1)."""
    return ops.logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


@register_model("iwae")
class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al. 2016): k-sample bound, default k=5."""

    loss_names = ("loss",)
    metric_names = ("iwae_bound", "elbo", "reconstruction", "kl")
    uses_beta = False  # the bound has no KL weight: beta would break its tightness
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8), "k": 3}

    fixed_params = ("beta", "kl")  # the bound has neither a KL weight nor a closed-form KL

    def __init__(self, *, k=5, **kwargs):
        """`k`: importance samples per example in training (the paper's 5 and 50; k=1 is
        the VAE with a Monte Carlo KL). The decoder runs on batch * k codes per step."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise KerasaeError(f"k must be a positive integer, got {k!r}")
        super().__init__(beta=1.0, **kwargs)
        self.k = k

    def compute_losses(self, x, training=False):
        nll, kl = self.weight_terms(x, self.k, training=training)  # each (batch, k)
        log_w = -(nll + kl)
        bound = importance_bound(log_w, axis=1)
        return {
            "loss": -ops.mean(bound),
            "iwae_bound": ops.mean(bound),
            "elbo": ops.mean(log_w),
            "reconstruction": ops.mean(nll),
            "kl": ops.mean(kl),
        }
