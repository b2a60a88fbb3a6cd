"""`miwae`, `piwae`, `ciwae`: the IWAE with an encoder that still learns.

Rainforth, Kosiorek, Le, Maddison, Igl, Wood and Teh, "Tighter Variational Bounds are Not
Necessarily Better" (ICML 2018). As the IWAE bound L_K (`kerasae.models.iwae`) tightens
with K, the signal-to-noise ratio of its gradient grows as sqrt(K) for the generative
network (the decoder) but falls as 1/sqrt(K) for the inference network (the encoder). The
paper's three remedies, on log weights log w = log p(x|z) + log p(z) - log q(z|x) of
draws z ~ q(z|x), each with the IWAE as a special case:

    MIWAE(M, K) = (1/M) sum_m L_K(z_m1 .. z_mK)       M independent K-draw bounds
    CIWAE(beta) = beta ELBO + (1 - beta) L_K           on the same K draws
    PIWAE(M, K): the decoder climbs L_MK, the encoder MIWAE(M, K), on the same M*K draws

MIWAE(1, K) is the IWAE, MIWAE(M, 1) the VAE with M draws; CIWAE(1) is the ELBO, CIWAE(0)
the IWAE. On any draws ELBO <= MIWAE(M, K) <= L_MK (Jensen's inequality twice). The loss
is the negative objective per example averaged over the batch, in nats; the IWAE bound
of all the step's draws and their ELBO (the encoder as a proposal) are logged beside it.

Defaults are pythae 0.1.2's: K = 10 (`number_samples`), M = 5
(`number_gradient_estimates`), beta = 0.5. Two differences from pythae: its MIWAE and
PIWAE normalise the weights over the M axis of their (batch, M, K) log weights, so the
gradient they follow is MIWAE(K, M)'s (10 bounds of 5 draws; PIWAE's encoder only); here
the M bounds are of K draws each, as the paper defines them. Its PIWAE hands the two losses to a
CoupledOptimizerTrainer (one optimizer per network); here one loss carries both in
`compute_losses`, its gradient split by network, which one Adam (per-weight) follows as
two would.
"""

import tensorflow as tf
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.iwae import IWAE, importance_bound
from kerasae.models.registry import register_model


def without_weight_gradients(fn, z):
    """fn(z), through which the gradient reaches `z` but none of the variables `fn` reads
    (they get zeros): a network used as a fixed function of its input."""

    @tf.custom_gradient
    def call(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            y = fn(z)

        def grad(dy, variables=None):
            dz = tape.gradient(y, z, output_gradients=dy)
            return dz, [tf.zeros_like(v) for v in variables or ()]

        return y, grad

    return call(z)


@register_model("miwae")
class MIWAE(IWAE):
    """Multiply importance-weighted AE (Rainforth et al. 2018): mean of M K-draw IWAE bounds.

    Defaults M=5, K=10, as pythae's."""

    metric_names = ("miwae_bound", "iwae_bound", "elbo", "reconstruction", "kl")
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8), "k": 3, "m": 2}

    def __init__(self, *, k=10, m=5, **kwargs):
        """`k`: draws per bound (the paper's K); `m`: independent bounds averaged (M).
        The decoder runs on batch * m * k codes per step."""
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise KerasaeError(f"m must be a positive integer, got {m!r}")
        super().__init__(k=k, **kwargs)
        self.m = m

    def bounds(self, log_w):
        """(ELBO, MIWAE(m, k), IWAE over all m * k) per example of (batch, m * k) log
        weights, the draws of an example in m consecutive groups of k."""
        groups = ops.reshape(log_w, (-1, self.m, self.k))
        miwae = ops.mean(importance_bound(groups, axis=2), axis=1)
        return ops.mean(log_w, axis=1), miwae, importance_bound(log_w, axis=1)

    def logged(self, log_w, nll, kl):
        """The metrics of the step's (batch, m * k) draws."""
        elbo, miwae, iwae = self.bounds(log_w)
        return {
            "miwae_bound": ops.mean(miwae),
            "iwae_bound": ops.mean(iwae),
            "elbo": ops.mean(elbo),
            "reconstruction": ops.mean(nll),
            "kl": ops.mean(kl),
        }

    def compute_losses(self, x, training=False):
        nll, kl = self.weight_terms(x, self.m * self.k, training=training)
        losses = self.logged(-(nll + kl), nll, kl)
        return {"loss": -losses["miwae_bound"], **losses}


@register_model("piwae")
class PIWAE(MIWAE):
    """Partially importance-weighted AE (Rainforth et al. 2018): decoder IWAE, encoder MIWAE.

    The decoder climbs the IWAE bound of all M*K draws, the encoder MIWAE(M, K)."""

    def compute_losses(self, x, training=False):
        """One loss whose gradient is the IWAE bound's for the decoder and MIWAE's for the
        encoder: the decoder's term sees the codes and q's parameters as constants, the
        encoder's term the decoder (and a learned likelihood scale) as a fixed function
        of z. Its value is -L_MK, the bound the generative network climbs; the encoder's
        term adds its gradient and nothing to the value.

        The decoder's bound is of all M*K draws of the step, the encoder's draws, as
        pythae's PIWAE ("IWAE loss (K=ML)"): the estimators compare at one budget of
        draws, and a bound on one group of K would leave the other draws unused."""
        draws = (-1, self.m * self.k)
        x, mean, log_var, z = self.posterior_draws(x, self.m * self.k, training=training)
        kl = ops.reshape(self.monte_carlo_kl(mean, log_var, z), draws)
        nll = ops.reshape(self.decoder_nll(x, ops.stop_gradient(z), training), draws)
        generative = importance_bound(-(nll + ops.stop_gradient(kl)), axis=1)
        frozen = without_weight_gradients(lambda c: self.decoder_nll(x, c, training), z)
        inference = self.bounds(-(ops.reshape(frozen, draws) + kl))[1]
        losses = self.logged(-(nll + kl), nll, kl)
        encoder_term = ops.mean(inference)
        losses["loss"] = -ops.mean(generative) - (encoder_term - ops.stop_gradient(encoder_term))
        return losses


@register_model("ciwae")
class CIWAE(IWAE):
    """Combination importance-weighted AE (Rainforth et al. 2018): beta ELBO + (1-beta) IWAE.

    On the same K draws; defaults beta=0.5, K=10, as pythae's."""

    def __init__(self, *, k=10, beta=0.5, **kwargs):
        """`beta`: the ELBO's weight in the convex combination (1: the VAE, 0: the IWAE),
        not a KL weight; `k`: draws per example, shared by both terms."""
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 1:
            raise KerasaeError(f"beta must be a number in [0, 1], got {beta!r}")
        super().__init__(k=k, **kwargs)
        self.beta = float(beta)

    def compute_losses(self, x, training=False):
        losses = super().compute_losses(x, training)  # the IWAE's: bound and ELBO, same draws
        combined = self.beta * losses["elbo"] + (1.0 - self.beta) * losses["iwae_bound"]
        return {**losses, "loss": -combined}
