"""`info_vae`: InfoVAE (Zhao, Song and Ermon, "InfoVAE: Balancing Learning and Inference in
Variational Autoencoders", AAAI 2019); with its defaults, the MMD-VAE.

The ELBO's KL term pulls every q(z|x) towards the prior, which with a strong decoder lets
the code carry too little about x. InfoVAE weighs the per-example KL down and adds a
divergence between the aggregate posterior q(z) and the prior p(z) instead (their eq. 6,
with D = MMD, the variant they recommend):

    loss = NLL(x | z) + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1) MMD(q(z), p(z))

per example, averaged over the batch. alpha = 0, lambda = 1 is the VAE; alpha = 1, lambda
= 0 leaves the reconstruction alone. MMD^2 is the unbiased estimate of Gretton et al.
(2012, `kerasae.probability.kernels.mmd_unbiased`) between the batch's draws z ~ q(z|x) and as many
draws from N(0, I).

Scale: kerasae's NLL is in nats per example, summed over pixels (a log-likelihood, the
scale of the paper's objective), so its lambda = 1000 carries over with its kernel, which
is the default here (`kernel="rbf"`): one Gaussian kernel exp(-|z - z'|^2 / dim^2), the
bandwidth of the authors' code. Measured at latent size 16 and batch 128, its MMD^2 is
0.003 (q too narrow, std 0.3) to 0.19 (q collapsed) for mismatched q, with a noise of
0.0003 (std) for q = p: lambda times it is a few to a couple of hundred nats against 0.3
of noise, comparable with the NLL and the KL. `kernel="imq"` is the multi-scale inverse
multiquadric of WAE-MMD (seven bandwidths summed): its MMD^2 is 10 to 300 times larger on
the same pairs, so scale lambda_ down with it (to about 10).
"""

from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE
from kerasae.probability.kernels import MMD_KERNELS, mmd_unbiased


@register_model("info_vae")
class InfoVAE(VAE):
    """InfoVAE / MMD-VAE (Zhao et al. 2019): (1 - alpha) KL + (alpha + lambda - 1) MMD."""

    loss_names = ("loss", "reconstruction", "kl", "mmd")
    metric_names = ()
    uses_beta = False  # alpha and lambda are the weights; one beta would mean nothing here
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}

    fixed_params = ("beta",)  # the KL weight is 1 - alpha

    def __init__(self, *, alpha=0.0, lambda_=1000.0, kernel="rbf", **kwargs):
        """`alpha` and `lambda_` (the paper's lambda; `lambda` is a Python keyword) must
        keep both weights >= 0: alpha <= 1 and alpha + lambda_ >= 1, else the loss would
        reward moving away from the prior. `kernel`: "rbf" (the paper's, which lambda_ =
        1000 is calibrated for) or "imq" (multi-scale, WAE's). `kl`: "analytic" or "mc"."""
        for key, value in (("alpha", alpha), ("lambda_", lambda_)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise KerasaeError(f"{key} must be a number, got {value!r}")
        if alpha > 1 or alpha + lambda_ < 1 or lambda_ < 0:
            raise KerasaeError(
                f"InfoVAE needs alpha <= 1, lambda_ >= 0 and alpha + lambda_ >= 1 (the KL "
                f"weight 1 - alpha and the MMD weight alpha + lambda_ - 1 must be >= 0), got "
                f"alpha={alpha!r}, lambda_={lambda_!r}"
            )
        if kernel not in MMD_KERNELS:
            raise KerasaeError(f"kernel must be one of {', '.join(MMD_KERNELS)}, got {kernel!r}")
        super().__init__(beta=1.0, **kwargs)
        self.alpha, self.lambda_, self.kernel = float(alpha), float(lambda_), kernel

    def mmd(self, z, prior_z):
        """MMD^2(q(z), p(z)) on samples; the rbf bandwidth dim^2 is the authors' (their
        kernel is exp(-mean_d (z_d - z'_d)^2 / dim)); C = 2 dim s gives it at s = dim / 2."""
        scales = (self.latent_dim / 2.0,) if self.kernel == "rbf" else None
        return mmd_unbiased(z, prior_z, kernel=self.kernel, scales=scales)

    def compute_losses(self, x, training=False):
        x, mean, log_var, z = self.posterior_draws(x, training=training)
        nll = ops.mean(self.decoder_nll(x, z, training))
        kl = ops.mean(self.kl_divergence(mean, log_var, z))
        prior_z = self.posterior.sample(ops.zeros_like(mean), ops.zeros_like(log_var))
        mmd = self.mmd(z, prior_z)
        loss = nll + (1.0 - self.alpha) * kl + (self.alpha + self.lambda_ - 1.0) * mmd
        return {"loss": loss, "reconstruction": nll, "kl": kl, "mmd": mmd}
