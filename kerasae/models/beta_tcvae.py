"""`beta_tcvae`: beta-TC-VAE (Chen, Li, Grosse and Duvenaud, "Isolating Sources of
Disentanglement in Variational Autoencoders", NeurIPS 2018).

The KL term of the ELBO, averaged over the data, splits into three parts (their eq. 2):

    E_x KL(q(z|x) || p(z)) = I_q(x; z)                      index-code mutual information
                           + KL(q(z) || prod_d q(z_d))       total correlation (TC)
                           + sum_d KL(q(z_d) || p(z_d))      dimension-wise KL

and the objective weighs them separately: loss = NLL + alpha MI + beta TC + gamma DWKL per
example (alpha = gamma = 1, beta = 6 by default; beta = alpha = gamma = 1 is the VAE).
Penalising the TC alone pushes towards a factorised aggregate posterior without also
squeezing the information the code carries about x, which a larger KL weight (beta-VAE)
does.

q(z) and q(z_d) are aggregate posteriors over the whole training set; they are estimated
on the minibatch with minibatch-weighted sampling (their section 4.1 and the reference
code's `elbo_decomposition`): for a batch of M draws z_i ~ q(z|x_i) from a dataset of N,

    log q(z_i)   ~= logsumexp_j log q(z_i | x_j)   - log(N M)
    log q(z_i,d) ~= logsumexp_j log q(z_i,d | x_j) - log(N M)

The three terms are then the per-example log q(z|x) - log q(z), log q(z) - sum_d log q(z_d)
and sum_d log q(z_d) - log p(z): their sum is exactly the one-draw Monte Carlo KL
log q(z|x) - log p(z). `dataset_size` (N) shifts the logged MI and TC by constants
(log(N M) and (dim - 1) log(N M)) and leaves every gradient unchanged; set it to the
training set's size for figures that are comparable across runs.
"""

import math

from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE
from kerasae.probability.gaussian import pairwise_log_prob, posterior_log_prob


@register_model("beta_tcvae")
class BetaTCVAE(VAE):
    """beta-TC-VAE (Chen et al. 2018): KL split into MI, total correlation (x beta) and DWKL."""

    loss_names = ("loss", "reconstruction", "mutual_info", "total_correlation", "dimwise_kl")
    metric_names = ("kl", "beta")  # kl: the three terms' sum; beta: the current TC weight
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8), "dataset_size": 256}

    fixed_params = ("kl",)  # the KL is decomposed, never computed whole

    def __init__(self, *, beta=6.0, alpha=1.0, gamma=1.0, dataset_size=60000, **kwargs):
        """`beta` weighs the total correlation (it is the `beta` --beta-schedule anneals),
        `alpha` the index-code mutual information, `gamma` the dimension-wise KL (the
        paper uses alpha = gamma = 1 and tunes beta); `dataset_size`: N of the minibatch
        estimator, the number of training examples (60000: MNIST's)."""
        for key, value in (("alpha", alpha), ("gamma", gamma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise KerasaeError(f"{key} must be a number >= 0, got {value!r}")
        if isinstance(dataset_size, bool) or not isinstance(dataset_size, int) or dataset_size < 1:
            raise KerasaeError(
                f"dataset_size must be a positive integer (the number of "
                f"training examples), got {dataset_size!r}"
            )
        super().__init__(beta=beta, **kwargs)
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.dataset_size = dataset_size

    def kl_decomposition(self, mean, log_var, z):
        """Per-example (MI, TC, dimension-wise KL) at draws z_i ~ q(z|x_i) of one batch,
        with the minibatch-weighted estimates of log q(z) and log q(z_d); each (batch,)."""
        log_qz_x = posterior_log_prob(z, mean, log_var)
        pairs = pairwise_log_prob(z, mean, log_var)  # (M, M, dim): log q(z_i,d | x_j)
        m = ops.cast(ops.shape(z)[0], pairs.dtype)
        log_nm = math.log(self.dataset_size) + ops.log(m)
        log_qz = ops.logsumexp(ops.sum(pairs, axis=-1), axis=1) - log_nm
        log_qz_marginals = ops.sum(ops.logsumexp(pairs, axis=1) - log_nm, axis=-1)
        mi = log_qz_x - log_qz
        tc = log_qz - log_qz_marginals
        dwkl = log_qz_marginals - self.log_prior(z)
        return mi, tc, dwkl

    def compute_losses(self, x, training=False):
        x, mean, log_var, z = self.posterior_draws(x, training=training)
        nll = self.decoder_nll(x, z, training)
        mi, tc, dwkl = (ops.mean(t) for t in self.kl_decomposition(mean, log_var, z))
        beta = ops.cast(self.beta_variable, mi.dtype)
        rec = ops.mean(nll)
        return {
            "loss": rec + self.alpha * mi + beta * tc + self.gamma * dwkl,
            "reconstruction": rec,
            "mutual_info": mi,
            "total_correlation": tc,
            "dimwise_kl": dwkl,
            "kl": mi + tc + dwkl,
            "beta": ops.convert_to_tensor(self.beta_variable),
        }
