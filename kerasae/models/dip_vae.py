"""`dip_vae`: DIP-VAE (Kumar, Sattigeri and Balakrishnan, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", ICLR 2018).

A VAE whose objective also pulls a covariance of the code towards the identity, so that
the dimensions of the aggregate posterior q(z) = E_x q(z|x) decorrelate (disentangled
inferred priors):

    loss = negative ELBO + lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2

with the negative ELBO in nats per example, averaged over the batch, and C estimated on
the batch:

    DIP-VAE-I  (variant="i"):   Cov[mu(x)], the covariance of the posterior means;
    DIP-VAE-II (variant="ii"):  Cov_q(z) = E_x[Cov q(z|x)] + Cov[mu(x)]
                               = Cov[mu(x)] + diag(mean_x exp(log_var(x))),

the covariance of z under q(z). Both are biased (divided by the batch size), as
disentanglement_lib's `compute_covariance_z_mean` is.

Defaults: lambda_od = 10 and lambda_d = 10 * lambda_od (100) for DIP-VAE-I, lambda_d =
lambda_od (10) for DIP-VAE-II: disentanglement_lib's ratios, which Locatello et al.
("Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", ICML 2019) used on dSprites with lambda_od in {1, 2, 5, 10, 20, 50};
10 is the middle of that grid. The penalty is logged as `dip`; the export, the score and
the log-likelihood estimate are the VAE's.
"""

from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE

VARIANTS = ("i", "ii")
#: lambda_d / lambda_od when lambda_d is not given (disentanglement_lib's lambda_d_factor)
LAMBDA_D_FACTOR = {"i": 10.0, "ii": 1.0}


def batch_covariance(x):
    """The biased covariance (divided by n) of the rows of `x` (n, d): shape (d, d)."""
    centred = x - ops.mean(x, axis=0, keepdims=True)
    return ops.matmul(ops.transpose(centred), centred) / ops.cast(ops.shape(x)[0], x.dtype)


def dip_penalty(cov, lambda_od, lambda_d):
    """lambda_od * sum of the squared off-diagonal entries of `cov` + lambda_d * sum of
    (its diagonal - 1)^2: how far a covariance is from the identity."""
    diagonal = ops.diagonal(cov)
    off_diagonal = cov - ops.diag(diagonal)
    return lambda_od * ops.sum(off_diagonal**2) + lambda_d * ops.sum((diagonal - 1.0) ** 2)


def _check_weight(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise KerasaeError(f"{key} must be a number >= 0, got {value!r}")


@register_model("dip_vae")
class DipVAE(VAE):
    """DIP-VAE (Kumar et al. 2018): a VAE whose code covariance is pulled to the identity."""

    loss_names = ("loss", "reconstruction", "kl", "dip")
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}

    def __init__(self, *, variant="i", lambda_od=10.0, lambda_d=None, **kwargs):
        """`variant`: "i" penalises the covariance of the posterior means, "ii" that of z
        under q(z) (the means' plus the mean posterior variance on the diagonal);
        `lambda_od`, `lambda_d`: the weights of the off-diagonal entries and of the
        diagonal's distance from 1 (lambda_d None: 10 * lambda_od for "i", lambda_od for
        "ii", disentanglement_lib's). The other arguments are the VAE's (beta = 1)."""
        if variant not in VARIANTS:
            raise KerasaeError(
                f'variant must be "i" (DIP-VAE-I) or "ii" (DIP-VAE-II), got {variant!r}'
            )
        _check_weight("lambda_od", lambda_od)
        if lambda_d is None:
            lambda_d = LAMBDA_D_FACTOR[variant] * float(lambda_od)
        _check_weight("lambda_d", lambda_d)
        super().__init__(**kwargs)
        self.record_config(lambda_d=float(lambda_d))  # the weight used, whatever the variant
        self.variant = variant
        self.lambda_od, self.lambda_d = float(lambda_od), float(lambda_d)

    def code_covariance(self, mean, log_var):
        """The batch's covariance that the penalty compares with the identity: Cov[mu(x)]
        for DIP-VAE-I, plus diag(mean_x exp(log_var)) for DIP-VAE-II."""
        mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
        cov = batch_covariance(mean)
        if self.variant == "ii":
            cov = cov + ops.diag(ops.mean(ops.exp(log_var), axis=0))
        return cov

    def posterior_penalties(self, mean, log_var, z):
        cov = self.code_covariance(mean, log_var)
        return {"dip": dip_penalty(cov, self.lambda_od, self.lambda_d)}
