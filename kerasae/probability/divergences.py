"""Divergence estimators on samples: KL, MMD, JSD and W1 (the adversarial family's toolbox).

- `kl_gaussian`: closed-form KL(N(mu, diag e^logvar) || N(mu2, diag e^logvar2)) (Kingma and
  Welling 2014, appendix B); `kl_monte_carlo`: E_q[log q - log p] from samples of q.
- `mmd`: the unbiased MMD^2 estimate of Gretton et al. (JMLR 2012) with the multi-scale
  inverse multiquadric kernel of WAE-MMD (Tolstikhin et al., ICLR 2018) or an RBF kernel.
- `jsd_from_discriminator`: for a discriminator D trained with binary cross-entropy on p
  (label 1) vs q (label 0), Goodfellow et al. 2014 show that at the optimum
  E_p[log D] + E_q[log(1 - D)] = 2 JS(p || q) - 2 log 2, so JS = that / 2 + log 2 (nats).
- `w1_from_critic`: for a 1-Lipschitz critic f, Kantorovich-Rubinstein duality gives
  W1(p, q) = sup_f E_p[f] - E_q[f]; a trained critic's gap is an estimate (a lower bound).
- `tc_from_logits` with `permute_dims`: the total correlation KL(q(z) || prod_d q(z_d)) by
  the density-ratio trick of FactorVAE (Kim and Mnih 2018): a discriminator tells codes
  from codes whose dimensions were shuffled independently, and its mean logit is the TC.

Numpy inputs give Python floats; tensor inputs give tensors (so models can use them in a loss).
Each estimator is written once: the models call these, the kernels live in
`kerasae.probability.kernels`.
"""

import math

import keras
import numpy as np
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.probability.kernels import MMD_KERNELS, mmd_unbiased


def _is_numpy(*values):
    return all(isinstance(v, (np.ndarray, list, tuple, float, int, np.floating)) for v in values)


def _out(value, as_float):
    return float(ops.convert_to_numpy(value)) if as_float else value


def _samples(a, name):
    a = np.asarray(a, dtype="float32")
    if a.ndim == 1:
        a = a[:, None]  # a 1-D array is n scalar samples
    if a.ndim != 2 or len(a) < 2:
        raise KerasaeError(
            f"{name} must hold at least 2 samples as an (n, d) array, got shape {a.shape}"
        )
    return a


def mmd(x, y, kernel="imq", scales=None):
    """Unbiased MMD^2 between samples x (n, d) and y (m, d); near 0 (possibly < 0) if x ~ y.

    `kernel` is "imq" (default) or "rbf"; `scales` are bandwidth multipliers s, each giving
    C = 2 * d * s (the WAE paper's 2 d sigma^2 for an N(0, I) prior; default 0.1 ... 10).
    """
    if kernel not in MMD_KERNELS:
        raise KerasaeError(f"kernel must be one of {', '.join(MMD_KERNELS)}, got {kernel!r}")
    as_float = _is_numpy(x, y)
    if as_float:
        x, y = _samples(x, "x"), _samples(y, "y")
        if x.shape[1] != y.shape[1]:
            raise KerasaeError(
                f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}"
            )
    return _out(mmd_unbiased(x, y, kernel=kernel, scales=scales), as_float)


def kl_gaussian(mu, logvar, mu2=0.0, logvar2=0.0, axis=-1):
    """Closed-form KL(N(mu, e^logvar) || N(mu2, e^logvar2)), diagonal, summed over `axis`."""
    as_float = _is_numpy(mu, logvar, mu2, logvar2)
    mu, logvar = ops.cast(mu, "float32"), ops.cast(logvar, "float32")
    mu2, logvar2 = ops.cast(mu2, "float32"), ops.cast(logvar2, "float32")
    kl = 0.5 * (
        logvar2 - logvar + (ops.exp(logvar) + ops.square(mu - mu2)) / ops.exp(logvar2) - 1.0
    )
    kl = ops.sum(kl, axis=axis) if ops.ndim(kl) else kl
    if as_float:
        kl = ops.convert_to_numpy(kl)
        return float(kl) if np.ndim(kl) == 0 else kl
    return kl


def kl_monte_carlo(samples, log_q, log_p):
    """E_q[log q(x) - log p(x)] from samples x ~ q; `log_q`, `log_p` map samples to
    log-densities."""
    as_float = _is_numpy(samples)
    value = ops.mean(ops.cast(log_q(samples), "float32") - ops.cast(log_p(samples), "float32"))
    return _out(value, as_float)


def jsd_from_logits(logits_p, logits_q):
    """JS(p || q) in nats from a discriminator's logits on samples of p (label 1) and q (label 0).

    Uses E_p[log D] + E_q[log(1 - D)] = 2 JS - 2 log 2 at the optimal D; log D is
    -softplus(-logit) and log(1 - D) is -softplus(logit), which stay finite for any logit.
    """
    as_float = _is_numpy(logits_p, logits_q)
    lp, lq = ops.cast(logits_p, "float32"), ops.cast(logits_q, "float32")
    value = 0.5 * (ops.mean(-ops.softplus(-lp)) + ops.mean(-ops.softplus(lq))) + math.log(2.0)
    return _out(value, as_float)


def jsd_from_discriminator(discriminator, p_samples, q_samples):
    """JS(p || q) estimate from a discriminator (a callable returning logits, p labelled 1)."""
    as_float = _is_numpy(p_samples, q_samples)
    value = jsd_from_logits(
        discriminator(ops.cast(p_samples, "float32")),
        discriminator(ops.cast(q_samples, "float32")),
    )
    return _out(value, as_float)


def w1_from_scores(scores_p, scores_q):
    """E_p[f] - E_q[f] from a critic's scores: the dual W1 estimate for a 1-Lipschitz f."""
    as_float = _is_numpy(scores_p, scores_q)
    value = ops.mean(ops.cast(scores_p, "float32")) - ops.mean(ops.cast(scores_q, "float32"))
    return _out(value, as_float)


def w1_from_critic(critic, p_samples, q_samples):
    """W1(p, q) estimate from a critic trained with a gradient penalty (a callable)."""
    as_float = _is_numpy(p_samples, q_samples)
    value = w1_from_scores(
        critic(ops.cast(p_samples, "float32")), critic(ops.cast(q_samples, "float32"))
    )
    return _out(value, as_float)


# --------------------------------------------- total correlation (FactorVAE, Kim and Mnih 2018)
def permute_dims(z, seed=None):
    """Each column of z (n, d) shuffled independently across the batch (their Algorithm 1).

    The rows of the result are draws from the product of the marginals prod_d q(z_d): each
    dimension keeps its values (the same multiset) while any dependence between dimensions
    is broken. `seed` is an int or a keras SeedGenerator.
    """
    order = ops.argsort(keras.random.uniform(ops.shape(z), seed=seed), axis=0)
    return ops.take_along_axis(z, order, axis=0)


def tc_from_logits(logits):
    """Total correlation KL(q(z) || prod_d q(z_d)) in nats from a discriminator's logits on
    draws z ~ q(z), for a discriminator trained with binary cross-entropy to tell them
    (label 1) from `permute_dims` draws (label 0): at its optimum D = q / (q + prod q_d), so
    E_q[log D / (1 - D)] = E_q[logit] is the TC (the density-ratio trick)."""
    as_float = _is_numpy(logits)
    return _out(ops.mean(ops.cast(logits, "float32")), as_float)


def gaussian_total_correlation(z):
    """The total correlation of a Gaussian with the covariance S of the samples z (n, d):
    KL(N(m, S) || prod_d N(m_d, S_dd)) = (sum_d log S_dd - log det S) / 2 nats.

    It sees linear dependence only, but it is stable in 16 dimensions, where the mixture
    estimator of Chen et al. (2018) over a test set is not: on independent 16-d codes that
    estimator gave 15.4 nats from 1,000 examples and 7.8 from 10,000, more than on codes
    sharing one factor. On z ~ q(z|x) over a test set it is a model-free yardstick that
    ranks vae, beta_tcvae and factor_vae on one footing (their own TC terms are not).
    """
    z = np.asarray(z, dtype="float64")
    if z.ndim != 2 or len(z) <= z.shape[1]:
        raise KerasaeError(f"need more samples than dimensions, got shape {z.shape}")
    cov = np.cov(z, rowvar=False)
    _, logdet = np.linalg.slogdet(cov)
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - logdet))
