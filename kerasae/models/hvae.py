"""`hvae`: the Hamiltonian VAE (Caterini, Doucet and Sejdinovic, "Hamiltonian Variational
Auto-Encoder", NeurIPS 2018).

The posterior draw z_0 ~ q(z|x) is moved by K = `n_lf` leapfrog steps of size eps =
`eps_lf` on the potential U(z) = -log p(x, z), with a momentum rho_0 = gamma / sqrt(beta_0),
gamma ~ N(0, I), cooled after each step k by sqrt(beta_{k-1} / beta_k) on the paper's
quadratic schedule 1 / sqrt(beta_k) = (1 - 1 / sqrt(beta_0)) (k / K)^2 + 1 / sqrt(beta_0)
(beta_K = 1; pythae 0.1.2's `_tempering`). Leapfrog steps preserve volume and the cooling
scales rho by sqrt(beta_0) in all, so the map (z_0, gamma) -> (z_K, rho_K) has unit
Jacobian and the extended-space weight

    log w = log p(x, z_K) + log N(rho_K; 0, I) - log q(z_0|x) - log N(gamma; 0, I)

(the paper's log p(x, z_K) + log N(rho_K; 0, I) - log q(z_0|x) - log N(rho_0; 0, I/beta_0)
+ d/2 log beta_0, written in gamma) is an unbiased estimate of p(x): its mean is the
loss's ELBO, its log-mean-exp over k draws the log p(x) of `kerasae evaluate
--log-likelihood` (`log_weights`). The loss is -log w per example, averaged over the batch.
`learn_eps_lf` and `learn_beta_zero` train the step size and the initial temperature by the
same gradient, as in the paper (pythae fixes both by default); grad_z log p(x, z) inside the
loss is a nested tape whose ops the outer step differentiates.

Export: the VAE's encoder (its first output, the posterior mean, is `encode`), decoder and
N(0, I) prior. The anomaly score (`score`, scorer.onnx) is the VAE's negative ELBO of
q(z|x) without the flow: the flow's gradient ops (ReluGrad, BroadcastGradientArgs) do not
convert to ONNX; `negative_elbo` and `log_weights` give the flow's bound.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import SCORE_DRAWS, VAE
from kerasae.probability.gaussian import posterior_log_prob, standard_normal_log_prob
from kerasae.probability.layers import stateless_seed


def tempering_schedule(beta_zero_sqrt, n_lf):
    """[sqrt(beta_0), sqrt(beta_1), ..., sqrt(beta_K) = 1]: the quadratic schedule."""
    inv = 1.0 / beta_zero_sqrt
    return [beta_zero_sqrt] + [
        1.0 / ((1.0 - inv) * (k / n_lf) ** 2 + inv) for k in range(1, n_lf + 1)
    ]


def check_flow_params(n_lf, eps_lf, beta_zero):
    if isinstance(n_lf, bool) or not isinstance(n_lf, int) or n_lf < 1:
        raise KerasaeError(f"n_lf must be a positive integer, got {n_lf!r}")
    if not (isinstance(eps_lf, (int, float)) and eps_lf > 0):
        raise KerasaeError(f"eps_lf must be a number > 0, got {eps_lf!r}")
    if not (isinstance(beta_zero, (int, float)) and 0 < beta_zero <= 1):
        raise KerasaeError(f"beta_zero must be a number in (0, 1], got {beta_zero!r}")


@register_model("hvae")
class HVAE(VAE):
    """Hamiltonian VAE (Caterini et al. 2018): leapfrog flow with tempering on the posterior."""

    loss_names = ("loss", "reconstruction", "kl")
    metric_names = ("eps_lf", "beta_zero")
    uses_beta = False  # the extended-space ELBO has no KL weight
    fixed_params = ("beta", "kl")  # the ELBO has no KL weight; the score's KL is analytic
    #: the score is VAE's: the flow's gradient ops (ReluGrad, BroadcastGradientArgs,
    #: DynamicStitch) do not convert to ONNX, and scorer.onnx must compute `score`
    score_description = (
        "negative ELBO of the encoder's q(z|x) alone (no leapfrog flow) in nats, "
        f"mean of {SCORE_DRAWS} fixed posterior draws"
    )
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8), "n_lf": 1}

    def __init__(
        self,
        *,
        n_lf=3,
        eps_lf=0.001,
        beta_zero=0.3,
        learn_eps_lf=True,
        learn_beta_zero=True,
        **kwargs,
    ):
        """`n_lf`: leapfrog steps K; `eps_lf`: their step size; `beta_zero`: the initial
        inverse temperature of the momentum, in (0, 1] (1: no tempering); `learn_eps_lf`,
        `learn_beta_zero`: train them with the networks (the paper's choice)."""
        check_flow_params(n_lf, eps_lf, beta_zero)
        super().__init__(beta=1.0, kl="analytic", **kwargs)
        self.n_lf, self.eps_lf, self.beta_zero = n_lf, float(eps_lf), float(beta_zero)
        self.step_size = self.add_weight(
            shape=(),
            name="eps_lf",
            trainable=bool(learn_eps_lf),
            initializer=keras.initializers.Constant(self.eps_lf),
        )
        self.beta_zero_sqrt = self.add_weight(
            shape=(),
            name="beta_zero_sqrt",
            trainable=bool(learn_beta_zero),
            initializer=keras.initializers.Constant(float(np.sqrt(self.beta_zero))),
        )
        self.momentum_seed = keras.random.SeedGenerator(None)

    # ------------------------------------------------------------------ the flow
    def log_joint(self, x, z, training=False):
        """(log p(x, z), grad_z log p(x, z)) per example: the negative potential and its
        gradient, from a tape the caller's tape differentiates through."""
        with tf.GradientTape() as tape:
            tape.watch(z)
            log_pxz = self.log_prior(z) - self.decoder_nll(x, z, training)
            total = ops.sum(log_pxz)  # examples are independent: per-example gradients
        return log_pxz, tape.gradient(total, z)

    def beta_sqrt(self):
        """sqrt(beta_0), kept in (0, 1] while it is learned."""
        return ops.clip(ops.convert_to_tensor(self.beta_zero_sqrt), 1e-3, 1.0)

    def leapfrog(self, x, z, rho, grad, eps, training=False):
        """One leapfrog step on U = -log p(x, z): (z, rho, log p(x, z), grad) after it."""
        rho = rho + 0.5 * eps * grad
        z = z + eps * rho
        log_pxz, grad = self.log_joint(x, z, training)
        return z, rho + 0.5 * eps * grad, log_pxz, grad

    def flow(self, x, z0, gamma, training=False):
        """(z_K, rho_K, log p(x, z_K)) from z_0 and the momentum's standard draw gamma."""
        eps = ops.cast(self.step_size, "float32")
        schedule = tempering_schedule(self.beta_sqrt(), self.n_lf)
        z, rho = z0, gamma / schedule[0]
        log_pxz, grad = self.log_joint(x, z, training)
        for k in range(self.n_lf):
            z, rho, log_pxz, grad = self.leapfrog(x, z, rho, grad, eps, training)
            rho = rho * (schedule[k] / schedule[k + 1])
        return z, rho, log_pxz

    def extended_terms(self, x, mean, log_var, z0, gamma, training=False):
        """(-log p(x|z_K), the rest of -log w): `log w` is minus their sum (module doc)."""
        z0, gamma = ops.cast(z0, "float32"), ops.cast(gamma, "float32")
        z, rho, log_pxz = self.flow(x, z0, gamma, training)
        log_prior = self.log_prior(z)
        rest = (
            posterior_log_prob(z0, mean, log_var)
            + standard_normal_log_prob(gamma)
            - standard_normal_log_prob(rho)
            - log_prior
        )
        return log_prior - log_pxz, rest

    def momentum(self, shape, seed=None):
        """gamma ~ N(0, I): from `seed` (stateless, another stream than z_0's), else the
        model's own seed generator."""
        if seed is None:
            return keras.random.normal(shape, seed=self.momentum_seed)
        seed = tf.random.experimental.stateless_fold_in(stateless_seed(seed), 7919)
        return tf.random.stateless_normal(shape, seed=seed)

    def weight_terms(self, x, k=1, seed=None, training=False):
        x, mean, log_var, z0 = self.posterior_draws(x, k, seed, training)
        gamma = self.momentum(ops.shape(z0), seed)
        nll, rest = self.extended_terms(x, mean, log_var, z0, gamma, training)
        return ops.reshape(nll, (-1, k)), ops.reshape(rest, (-1, k))

    def compute_losses(self, x, training=False):
        nll, rest = self.weight_terms(x, 1, training=training)
        return {
            "loss": ops.mean(nll + rest),
            "reconstruction": ops.mean(nll),
            "kl": ops.mean(rest),
            "eps_lf": ops.convert_to_tensor(self.step_size),
            "beta_zero": ops.square(self.beta_sqrt()),
        }

    def negative_elbo(self, x, beta=None, seed=None, training=False, draws=1):
        """Per-example (-log p(x|z_K), the rest, their sum) of the extended-space ELBO."""
        nll, rest = (ops.mean(t, axis=1) for t in self.weight_terms(x, draws, seed, training))
        return nll, rest, nll + rest
