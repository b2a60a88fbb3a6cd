"""Prior matching on the codes: the shared part of `aae` and `wae` (Makhzani et al. 2015;
Tolstikhin et al., ICLR 2018), on the two-optimizer loop of `kerasae.models.adversarial`.

The divergence between the aggregated posterior q(z) and the prior p(z) is one of
  "js":     a discriminator with binary cross-entropy, optimum 2 JS - 2 log 2 (AAE, WAE-GAN),
            stabilised by the same gradient penalty (Fedus et al. 2018, "Many paths to
            equilibrium"): without it, the codes ran off or collapsed in our runs;
  "critic": a critic with a gradient penalty, the Kantorovich-Rubinstein dual of W1;
  "mmd":    the unbiased multi-scale MMD of WAE-MMD (no discriminator, no second optimizer).
Every loss term and estimate comes from `kerasae.probability`.

History: `loss` is the reconstruction loss (comparable with every other family) and
`gen_loss` the regularizer (`mmd` for the MMD variant): the loss terms. Logged metrics:
`mmd`, the MMD between a batch of codes and prior draws (a yardstick for every variant);
the JS variants add `disc_loss`, `jsd` (and `gp` with a gradient penalty); the critic adds
`critic_loss`, `gp` and `w1`. Priors: `gaussian`, `mixture` (k Gaussians on a circle) and
`uniform` (unit variance).
"""

import math

import keras
import numpy as np
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.adversarial import (
    AdversarialAutoencoder,
    build_discriminator,
    check_n_critic,
)
from kerasae.models.networks import resolve_architecture
from kerasae.probability import adversarial, divergences, kernels

PRIORS = ("gaussian", "mixture", "uniform")
DIVERGENCES = ("js", "critic", "mmd")
#: the mixture prior: `prior_components` Gaussians with this std, means on a circle of this
#: radius in the first two latent dimensions (Makhzani et al.'s 2-D figure layout)
MIXTURE_RADIUS, MIXTURE_STD = 2.0, 0.5

LOSS_NAMES = {"js": ("loss", "gen_loss"), "critic": ("loss", "gen_loss"), "mmd": ("loss", "mmd")}
METRIC_NAMES = {
    "js": ("disc_loss", "jsd", "gp", "mmd"),
    "critic": ("critic_loss", "gp", "w1", "mmd"),
    "mmd": (),
}


def draw_prior(kind, n, dim, components=10, seed=None):
    """n draws from the prior (a tensor); `seed` is an int or a keras SeedGenerator."""
    if kind == "gaussian":
        return keras.random.normal((n, dim), seed=seed)
    if kind == "uniform":  # unit variance, like the other priors, so kernels and lambda carry over
        return keras.random.uniform((n, dim), -math.sqrt(3.0), math.sqrt(3.0), seed=seed)
    which = keras.random.randint((n,), 0, components, seed=seed)
    angle = 2.0 * math.pi * ops.cast(which, "float32") / components
    centres = ops.stack([ops.cos(angle), ops.sin(angle)], axis=-1) * MIXTURE_RADIUS
    centres = ops.pad(centres, [[0, 0], [0, dim - 2]]) if dim > 2 else centres[:, :dim]
    return centres + MIXTURE_STD * keras.random.normal((n, dim), seed=seed)


class PriorMatchingAutoencoder(AdversarialAutoencoder):
    """A deterministic autoencoder whose codes are matched to a prior by a discriminator,
    a critic or an MMD (`divergence`)."""

    generative = True
    loss_names = LOSS_NAMES["js"]
    metric_names = METRIC_NAMES["js"]
    fixed_params = ("divergence",)  # the family's own choice (aae: js; wae: its variant)
    # conv_ae's rate, with its filters (64, 128): Fashion-MNIST pilot (20k images, 3 epochs),
    # wae critic test MSE 0.0146 vs 0.0157 at filters (32, 64) and 1e-3
    default_learning_rate = 2e-3

    def __init__(
        self,
        *,
        architecture="auto",
        prior="gaussian",
        prior_components=10,
        disc_units=(256, 256),
        n_critic=2,
        reg_weight=None,
        gp_weight=10.0,
        kernel="imq",
        divergence="js",
        **kwargs,
    ):
        """`architecture` "auto": conv for images, mlp otherwise; `reg_weight` (lambda)
        weighs the divergence against the per-pixel mean reconstruction loss (None: the
        family's default for the architecture); `gp_weight` the discriminator's or critic's
        gradient penalty; `kernel` that of the MMD (logged as a diagnostic otherwise)."""
        super().__init__(architecture=architecture, **kwargs)
        self.architecture = resolve_architecture(self.architecture, self.data_shape)
        if reg_weight is None:
            reg_weight = self.default_reg_weight(self.architecture)
        self._build_adversarial(
            prior,
            prior_components,
            divergence,
            disc_units,
            n_critic,
            reg_weight,
            gp_weight,
            kernel,
        )

    def default_reg_weight(self, architecture):
        """lambda when `reg_weight` is None (a family's own default per architecture)."""
        raise NotImplementedError

    def _build_adversarial(
        self,
        prior,
        prior_components,
        divergence,
        disc_units,
        n_critic,
        reg_weight,
        gp_weight,
        kernel,
    ):
        """Check the shared arguments and build encoder, decoder and discriminator."""
        self._check_undercomplete()
        if prior not in PRIORS:
            raise KerasaeError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if prior == "mixture" and self.latent_dim < 2:
            raise KerasaeError(
                "the mixture prior lays its components on a circle and needs "
                "latent_dim >= 2; use prior='gaussian' for a 1-D latent"
            )
        if int(prior_components) < 1:
            raise KerasaeError(f"prior_components must be >= 1, got {prior_components}")
        check_n_critic(n_critic)
        if float(reg_weight) < 0 or float(gp_weight) < 0:
            raise KerasaeError(
                f"reg_weight and gp_weight must be >= 0, got {reg_weight} and {gp_weight}"
            )
        if kernel not in kernels.MMD_KERNELS:
            raise KerasaeError(
                f"kernel must be one of {', '.join(kernels.MMD_KERNELS)}, got {kernel!r}"
            )
        self.prior, self.divergence = prior, divergence
        self.prior_components, self.n_critic = int(prior_components), int(n_critic)
        self.reg_weight, self.gp_weight, self.kernel = float(reg_weight), float(gp_weight), kernel
        self.loss_names = LOSS_NAMES[divergence]
        self.metric_names = tuple(
            n
            for n in METRIC_NAMES[divergence]
            if n != "gp" or self.gp_weight > 0 or divergence == "critic"
        )
        self.make_trackers()
        self.seed_generator = keras.random.SeedGenerator(0)
        self.resolve_networks(base=64)  # filters None: by the image size, conv_ae's widths
        self.set_networks(self.build_encoder(), self.build_decoder())
        # MMD needs no discriminator: then there is no second network and no second optimizer
        self.discriminator = (
            None
            if divergence == "mmd"
            else build_discriminator(self.latent_dim, tuple(disc_units))
        )

    # ------------------------------------------------------------------ prior
    def sample_prior(self, n, seed=None):
        """n draws from the model's prior as a numpy array."""
        seed = self.seed_generator if seed is None else seed
        return np.asarray(
            draw_prior(self.prior, int(n), self.latent_dim, self.prior_components, seed=seed)
        )

    def sample(self, n, seed=None):
        """Decode n prior draws: images shaped like the training data."""
        if int(n) <= 0:
            raise KerasaeError(f"the number of samples must be positive, got {n}")
        return self.decode(self.sample_prior(n, seed=seed))

    @property
    def prior_spec(self):
        """The export manifest's prior for a mixture or uniform prior, so kerasae-runtime
        draws from this very distribution (None for the Gaussian: the standard normal)."""
        if self.prior == "gaussian":
            return None
        dim, k = self.latent_dim, self.prior_components
        if self.prior == "uniform":
            return lambda: {
                "kind": "uniform",
                "dim": dim,
                "low": -np.sqrt(3.0),
                "high": np.sqrt(3.0),
                "source": "the model's uniform prior",
            }
        angle = 2.0 * np.pi * np.arange(k) / k
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * MIXTURE_RADIUS
        means = np.pad(centres, [(0, 0), (0, max(dim - 2, 0))])[:, :dim]
        return lambda: {
            "kind": "gmm",
            "dim": dim,
            "weights": [1.0 / k] * k,
            "means": means.tolist(),
            "scale_diag": [[MIXTURE_STD] * dim] * k,
            "source": f"the model's prior: {k} Gaussians on a circle",
        }

    def _prior_batch(self, n):
        return draw_prior(
            self.prior, n, self.latent_dim, self.prior_components, seed=self.seed_generator
        )

    # ------------------------------------------------------------------ the loop's parts
    def default_disc_optimizer(self):
        if self.divergence == "critic":  # WGAN-GP's betas; a faster lr keeps up with the codes
            return keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.5, beta_2=0.9)
        # WAE-GAN's beta_1; a faster rate than its 5e-4 keeps up with 16 moving latents
        return keras.optimizers.Adam(learning_rate=2e-3, beta_1=0.5)

    def code_diagnostics(self, codes):
        """Logged metrics of the frozen codes, before the discriminator's steps."""
        if self.divergence == "mmd":  # there the regularizer itself is this yardstick
            return {}
        return {
            "mmd": kernels.mmd_unbiased(
                codes, self._prior_batch(ops.shape(codes)[0]), kernel=self.kernel
            )
        }

    def discriminator_losses(self, codes):
        """(the discriminator's/critic's own loss, its logged diagnostics) on the codes."""
        z_prior = self._prior_batch(ops.shape(codes)[0])
        real = self.discriminator(z_prior, training=True)
        fake = self.discriminator(codes, training=True)
        if self.divergence == "critic":
            gp = adversarial.gradient_penalty(
                self.discriminator, z_prior, codes, seed=self.seed_generator
            )
            own = adversarial.critic_loss(real, fake)
            own = own + self.gp_weight * gp
            return own, {
                "critic_loss": own,
                "gp": gp,
                "w1": divergences.w1_from_scores(real, fake),
            }
        own = adversarial.discriminator_bce(real, fake)
        logs = {"disc_loss": own, "jsd": divergences.jsd_from_logits(real, fake)}
        if self.gp_weight > 0:
            gp = adversarial.gradient_penalty(
                self.discriminator, z_prior, codes, seed=self.seed_generator
            )
            own, logs["gp"] = own + self.gp_weight * gp, gp
        return own, logs

    def add_regularizer(self, logs, codes):
        """Log the term that pulls the codes toward the prior (against the current
        discriminator) and return the total the autoencoder's optimizer minimises."""
        z_prior = self._prior_batch(ops.shape(codes)[0])
        if self.divergence == "mmd":
            logs["mmd"] = reg = kernels.mmd_unbiased(codes, z_prior, kernel=self.kernel)
        elif self.divergence == "critic":
            # W1 up to the critic's E_p[f], which does not depend on the codes
            fake = self.discriminator(codes, training=False)
            logs["gen_loss"] = reg = -ops.mean(ops.cast(fake, "float32"))
        else:
            fake = self.discriminator(codes, training=False)
            logs["gen_loss"] = reg = adversarial.generator_bce(fake)
        return logs["loss"] + self.reg_weight * reg
