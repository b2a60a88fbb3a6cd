"""`rhvae`: the Riemannian Hamiltonian VAE (Chadebec, Mantoux and Allassonnière,
"Geometry-Aware Hamiltonian Variational Auto-Encoder", arXiv 2010.11518, 2020).

HVAE's flow (`kerasae.models.hvae`) on a learned Riemannian latent space: a metric network
maps x to a lower-triangular L(x) (exp on the diagonal, pythae 0.1.2's Metric_MLP), and

    G^{-1}(z) = sum_i L_i L_i^T exp(-||z - c_i||^2 / T^2) + lambda I

(`kerasae.probability.riemannian`) over centroids c_i = the posterior means: the batch's
own in training (gradients reach the encoder and the metric network through them, as in
pythae), at inference a bank of the last `metric_size` training codes and matrices, filled
after each step (pythae keeps those of the epoch's last 100 batches, 12,800 at batch 128;
a smaller bank keeps `log_weights` and sampling affordable). The momentum is
rho_0 ~ N(0, G(z_0) / beta_0) and the Hamiltonian
H(z, rho) = -log p(x, z) + rho^T G^{-1}(z) rho / 2 + log det G(z) / 2 is integrated by the
generalised (implicit) leapfrog, its two implicit equations solved by `fixed_point_steps`
fixed-point iterations (pythae's 3), with HVAE's tempering. The flow
is volume-preserving up to the fixed points' residual, so the weight

    log w = log p(x, z_K) + log N(rho_K; 0, G(z_K)) - log q(z_0|x) - log N(gamma; 0, I)
            + log det G(z_0) / 2
    (rho_0 = A^-T gamma / sqrt(beta_0), A A^T = G^{-1}(z_0): rho_0 ~ N(0, G(z_0) / beta_0))

is the ELBO's integrand and `log_weights`'s. pythae's training loss leaves out the
momentum's initial density and draws rho_0 with the metric network's L(x) instead of
G(z_0)'s factor (and its second implicit equation keeps G^{-1} at the old z): here the
bound is the whole one. The step size and beta_0 are fixed, as in pythae.

Generation (`sample`) is pythae's RHVAESampler: HMC (100 steps of 15 leapfrogs of 0.03,
from random bank centroids, Metropolis-corrected) on the density sqrt(det G^{-1}(z)).
kerasae-runtime draws only closed-form priors, so the export's prior is N(0, I), the
model's p(z) (pythae's default sampler), not the manifold sampler. The anomaly score is the
VAE's, as HVAE's (the flow's gradient ops do not convert to ONNX).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from kerasae.errors import KerasaeError
from kerasae.models.hvae import HVAE, tempering_schedule
from kerasae.models.registry import register_model
from kerasae.probability.gaussian import posterior_log_prob, standard_normal_log_prob
from kerasae.probability.riemannian import (
    KernelMetric,
    log_det_spd,
    lower_triangular,
    matvec,
    momentum_log_prob,
)

#: pythae's RHVAESamplerConfig defaults
SAMPLER = {"mcmc_steps": 100, "n_lf": 15, "eps_lf": 0.03, "beta_zero": 1.0}


@register_model("rhvae")
class RHVAE(HVAE):
    """Riemannian Hamiltonian VAE (Chadebec et al. 2020): HVAE on a learned latent metric."""

    metric_names = ()
    aux_names = ("centroids", "matrices")
    fixed_params = ("learn_eps_lf", "learn_beta_zero")  # fixed, as in pythae
    tiny_config = {
        "latent_dim": 2,
        "hidden_units": (16,),
        "filters": (4, 8),
        "n_lf": 1,
        "metric_hidden": 8,
        "metric_size": 16,
        "fixed_point_steps": 2,
    }

    def __init__(
        self,
        *,
        temperature=1.5,
        regularization=0.01,
        metric_hidden=400,
        metric_size=512,
        fixed_point_steps=3,
        **kwargs,
    ):
        """`temperature` T and `regularization` lambda of the metric; `metric_hidden`: the
        metric network's hidden units; `metric_size`: training codes the inference metric
        keeps; `fixed_point_steps`: iterations per implicit leapfrog equation."""
        for name, value in (("temperature", temperature), ("regularization", regularization)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise KerasaeError(f"{name} must be a number > 0, got {value!r}")
        for name, value in (
            ("metric_hidden", metric_hidden),
            ("metric_size", metric_size),
            ("fixed_point_steps", fixed_point_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise KerasaeError(f"{name} must be a positive integer, got {value!r}")
        super().__init__(learn_eps_lf=False, learn_beta_zero=False, **kwargs)
        self.temperature, self.regularization = float(temperature), float(regularization)
        self.metric_size, self.fixed_point_steps = metric_size, fixed_point_steps
        self.metric_net = self.build_metric(metric_hidden)
        d = self.latent_dim
        self.bank_centroids = self.add_weight(
            shape=(metric_size, d), name="bank_centroids", trainable=False, initializer="zeros"
        )
        # before training: pythae's starting metric, one identity matrix at the origin
        self.bank_matrices = self.add_weight(
            shape=(metric_size, d, d), name="bank_matrices", trainable=False, initializer="zeros"
        )
        self.bank_matrices.assign(np.eye(d, dtype="float32")[None].repeat(metric_size, 0))
        self.bank_written = self.add_weight(
            shape=(), dtype="int32", name="bank_written", trainable=False, initializer="zeros"
        )

    def build_metric(self, hidden):
        """x -> [diag (d), below-diagonal (d(d-1)/2)] of L(x): pythae's Metric_MLP."""
        d = self.latent_dim
        x = keras.Input(self.data_shape, name="x")
        h = layers.Dense(hidden, activation="relu", name="metric_dense")(layers.Flatten()(x))
        diag = layers.Dense(d, name="metric_diag", dtype="float32")(h)
        lower = layers.Dense(max(1, d * (d - 1) // 2), name="metric_lower", dtype="float32")(h)
        return keras.Model(x, [diag, lower], name="metric")

    def metric_matrices(self, x, training=False):
        """M(x) = L(x) L(x)^T: (batch, d, d)."""
        diag, lower = self.metric_net(x, training=training)
        d = self.latent_dim
        lower = lower[:, : d * (d - 1) // 2]
        chol = lower_triangular(ops.cast(diag, "float32"), ops.cast(lower, "float32"), d)
        return ops.matmul(chol, ops.transpose(chol, (0, 2, 1)))

    def bank_metric(self):
        """The inference metric: the bank's filled entries (the identity at 0 before any)."""
        filled = ops.maximum(ops.minimum(self.bank_written, self.metric_size), 1)
        mask = ops.arange(self.metric_size) < filled
        return self.kernel(self.bank_centroids, self.bank_matrices, mask)

    def kernel(self, centroids, matrices, mask=None):
        return KernelMetric(centroids, matrices, self.temperature, self.regularization, mask)

    # ------------------------------------------------------------------ the flow
    def potential_gradient(self, x, z, metric, training):
        """(log p(x, z), G^{-1}(z), the rho-free part of dH/dz) at z."""
        log_pxz, grad = self.log_joint(x, z, training)
        inverse = metric.inverse(z)
        log_det_grad = metric.inner_gradient(z, tf.linalg.inv(inverse))
        return log_pxz, inverse, -grad - 0.5 * log_det_grad

    def generalized_leapfrog(self, x, z, rho, state, metric, eps, training=False):
        """One generalised leapfrog step; `state` = potential_gradient at z, returned at
        the new z with (z, rho)."""
        inverse, part = state[1], state[2]

        def z_gradient(at, r, p):  # dH/dz at (at, r), p its rho-free part
            return p + 0.5 * metric.inner_gradient(at, r[:, :, None] * r[:, None, :])

        half = rho
        for _ in range(self.fixed_point_steps):
            half = rho - 0.5 * eps * z_gradient(z, half, part)
        velocity = matvec(inverse, half)
        new = z
        for _ in range(self.fixed_point_steps):
            new = z + 0.5 * eps * (velocity + matvec(metric.inverse(new), half))
        state = self.potential_gradient(x, new, metric, training)
        return new, half - 0.5 * eps * z_gradient(new, half, state[2]), state

    def extended_terms(self, x, mean, log_var, z0, gamma, training=False, metric=None):
        if metric is None:
            metric = (
                self.kernel(mean, self.metric_matrices(x, training))
                if training
                else self.bank_metric()
            )
        z0, gamma = ops.cast(z0, "float32"), ops.cast(gamma, "float32")
        eps = ops.cast(self.step_size, "float32")
        schedule = tempering_schedule(self.beta_sqrt(), self.n_lf)
        state = self.potential_gradient(x, z0, metric, training)
        chol = tf.linalg.cholesky(state[1])  # G^{-1}(z_0) = A A^T, so A^-T gamma ~ N(0, G)
        rho = tf.linalg.triangular_solve(chol, gamma[..., None], lower=True, adjoint=True)
        rho, z, log_det0 = rho[..., 0] / schedule[0], z0, log_det_spd(state[1])
        for k in range(self.n_lf):
            z, rho, state = self.generalized_leapfrog(x, z, rho, state, metric, eps, training)
            rho = rho * (schedule[k] / schedule[k + 1])
        log_prior = self.log_prior(z)
        rest = (
            posterior_log_prob(z0, mean, log_var)
            + standard_normal_log_prob(gamma)
            + 0.5 * log_det0
            - momentum_log_prob(rho, state[1])
            - log_prior
        )
        return log_prior - state[0], rest

    def compute_losses(self, x, training=False):
        x, mean, log_var, z0 = self.posterior_draws(x, 1, None, training)
        matrices = self.metric_matrices(x, training)
        metric = self.kernel(mean, matrices) if training else self.bank_metric()
        gamma = self.momentum(ops.shape(z0))
        nll, rest = self.extended_terms(x, mean, log_var, z0, gamma, training, metric)
        return {
            "loss": ops.mean(nll + rest),
            "reconstruction": ops.mean(nll),
            "kl": ops.mean(rest),
            "centroids": ops.stop_gradient(ops.cast(mean, "float32")),
            "matrices": ops.stop_gradient(matrices),
        }

    def after_step(self, x, outputs):
        """Write the batch's codes and matrices into the bank (a ring buffer)."""
        centroids, matrices = outputs["centroids"], outputs["matrices"]
        centroids, matrices = centroids[-self.metric_size :], matrices[-self.metric_size :]
        n = tf.shape(centroids)[0]
        index = (self.bank_written + tf.range(n)) % self.metric_size
        self.bank_centroids.assign(
            tf.tensor_scatter_nd_update(self.bank_centroids, index[:, None], centroids)
        )
        self.bank_matrices.assign(
            tf.tensor_scatter_nd_update(self.bank_matrices, index[:, None], matrices)
        )
        self.bank_written.assign((self.bank_written + n) % (2**30))

    # ------------------------------------------------------------------ generation
    def sample(self, n, seed=None, **sampler):
        """Decoder means of `n` draws of pythae's Riemannian HMC sampler on sqrt(det
        G^{-1}(z)) (`SAMPLER`'s settings, overridable as keywords)."""
        settings = {**SAMPLER, **sampler}
        rng = np.random.default_rng(seed)
        steps, n_lf, d = settings["mcmc_steps"], settings["n_lf"], self.latent_dim
        filled = max(1, min(int(self.bank_written.numpy()), self.metric_size))
        z0 = self.bank_centroids.numpy()[rng.integers(filled, size=int(n))]
        gammas = rng.standard_normal((steps, int(n), d)).astype("float32")
        accept = rng.random((steps, int(n))).astype("float32")
        z = riemannian_hmc(
            self.bank_metric(),
            tf.constant(z0),
            tf.constant(gammas),
            tf.constant(accept),
            n_lf,
            settings["eps_lf"],
            settings["beta_zero"],
        )
        return self.decode(np.asarray(z))

    def prior_spec(self):
        """The export's prior: N(0, I), the model's p(z), not the manifold sampler."""
        return {
            "kind": "standard_normal",
            "dim": int(self.latent_dim),
            "source": "the model's N(0, I) prior (pythae's default sampler); RHVAE.sample "
            "draws from the Riemannian HMC sampler instead, which kerasae-runtime lacks",
        }


def riemannian_hmc(metric, z, gammas, accept, n_lf, eps, beta_zero):
    """HMC on log pi(z) = log det G^{-1}(z) / 2 from z, one Metropolis test per step
    (pythae's RHVAESampler.hmc_sampling); `gammas` (steps, n, d), `accept` (steps, n)."""

    def log_pi(at):
        return 0.5 * log_det_spd(metric.inverse(at))

    def grad(at):  # d log pi / dz = <G(z), dG^{-1}/dz> / 2
        return 0.5 * metric.inner_gradient(at, tf.linalg.inv(metric.inverse(at)))

    schedule = tempering_schedule(float(np.sqrt(beta_zero)), n_lf)

    @tf.function
    def run(z, gammas, accept):
        for i in tf.range(tf.shape(gammas)[0]):
            rho = gammas[i] / schedule[0]
            h0 = -log_pi(z) + 0.5 * ops.sum(ops.square(rho), -1)
            new = z
            for k in range(n_lf):
                rho = rho + 0.5 * eps * grad(new)
                new = new + eps * rho
                rho = (rho + 0.5 * eps * grad(new)) * (schedule[k] / schedule[k + 1])
            h = -log_pi(new) + 0.5 * ops.sum(ops.square(rho), -1)
            move = accept[i] < ops.exp(h0 - h)
            z = tf.where(move[:, None], new, z)
        return z

    return run(z, gammas, accept)
