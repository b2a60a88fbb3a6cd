"""The two-optimizer base of every model with a discriminator or critic on its codes.

Adversarial autoencoders (Makhzani et al. 2015), Wasserstein autoencoders (Tolstikhin
et al., ICLR 2018) and FactorVAE (Kim and Mnih, ICML 2018) share one training loop,
written once here. Per batch:

  (a) `autoencoder_terms`: the forward pass under the autoencoder's tape, giving its own
      loss terms and the codes the discriminator sees (one encoder pass);
  (b) `code_diagnostics` on the frozen codes, then `n_critic` steps of the discriminator
      on `discriminator_losses(frozen codes)`, with its own optimizer (`disc_optimizer`);
  (c) `add_regularizer`: the term that pushes the codes where the discriminator says they
      should be, against the freshly updated discriminator; it returns the total.

(a) and (c) are applied in one step of the autoencoder's optimizer, as in the WAE paper's
Algorithms 1 and 2 (FactorVAE's Algorithm 2 too). Two separate Adam steps would make the
regularizer's weight meaningless (Adam is invariant to the scale of a loss) and would cost
a second encoder pass. A family on this loop overrides those four parts; what follows is
their prior-matching implementation, which AAE and WAE use.

The divergence between the aggregated posterior q(z) and the prior p(z) is one of
  "js":     a discriminator with binary cross-entropy, optimum 2 JS - 2 log 2 (AAE, WAE-GAN),
            stabilised by the same gradient penalty (Fedus et al. 2018, "Many paths to
            equilibrium"): without it, the codes ran off or collapsed in our runs;
  "critic": a critic with a gradient penalty, the Kantorovich-Rubinstein dual of W1;
  "mmd":    the unbiased multi-scale MMD of WAE-MMD (no discriminator, no second optimizer).
Every loss term comes from `kerasae.losses`, every estimate from `kerasae.divergences`.

History: `loss` is the reconstruction loss (comparable with every other family) and
`gen_loss` the regularizer (`mmd` for the MMD variant): the loss terms. Logged metrics:
`mmd`, the MMD between a batch of codes and prior draws (a yardstick for every variant);
the JS variants add `disc_loss`, `jsd` (and `gp` with a gradient penalty); the critic adds
`critic_loss`, `gp` and `w1`.

This is the one documented exception to "families override only compute_losses": two
optimizers take turns within a step, so the loop lives here, once. It still validates its
outputs against the declared names, adds layers' `add_loss` terms and calls `after_step`,
like the base step.
"""
import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from kerasae import nets
from kerasae.probability import adversarial
from kerasae.probability import divergences
from kerasae.probability import kernels
from kerasae.errors import KerasaeError
from kerasae.models.base import Autoencoder

PRIORS = ("gaussian", "mixture", "uniform")
DIVERGENCES = ("js", "critic", "mmd")
#: the mixture prior: `prior_components` Gaussians with this std, means on a circle of this
#: radius in the first two latent dimensions (Makhzani et al.'s 2-D figure layout)
MIXTURE_RADIUS, MIXTURE_STD = 2.0, 0.5

LOSS_NAMES = {"js": ("loss", "gen_loss"), "critic": ("loss", "gen_loss"),
              "mmd": ("loss", "mmd")}
METRIC_NAMES = {"js": ("disc_loss", "jsd", "gp", "mmd"),
                "critic": ("critic_loss", "gp", "w1", "mmd"), "mmd": ()}


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


def resolve_architecture(architecture, data_shape):
    """"auto" -> "conv" for images (2-D or 3-D examples), "mlp" otherwise."""
    if architecture == "auto":
        return "conv" if len(tuple(data_shape)) in (2, 3) else "mlp"
    return architecture


def build_discriminator(latent_dim, units, name="discriminator", activation="relu"):
    """An MLP from z to one unnormalised score (a logit, or a critic value).

    No normalisation layers: batch statistics would break the per-example gradient penalty.
    (The WAE authors' code adds log N(z; 0, I) to the logit; with 16 latents that makes the
    origin look "most real" and collapsed our codes there, so we do not.)
    """
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, width in enumerate(units):
        h = layers.Dense(width, activation=activation, name=f"disc_dense{i}")(h)
    return keras.Model(z, layers.Dense(1, dtype="float32", name="score")(h), name=name)


def check_n_critic(n_critic):
    """Discriminator steps per autoencoder step: at least one."""
    if int(n_critic) < 1:
        raise KerasaeError(f"n_critic must be >= 1, got {n_critic}")


class AdversarialAutoencoder(Autoencoder):
    """Base class: an autoencoder and a discriminator on its codes, with an optimizer each."""

    generative = True
    loss_names = LOSS_NAMES["js"]
    metric_names = METRIC_NAMES["js"]
    # conv_ae's rate, with its filters (64, 128): Fashion-MNIST pilot (20k images, 3 epochs),
    # wae critic test MSE 0.0146 vs 0.0157 at filters (32, 64) and 1e-3
    default_learning_rate = 2e-3

    def _build_adversarial(self, architecture, hidden_units, filters, kernel_size, activation,
                           prior, prior_components, divergence, disc_units, n_critic,
                           reg_weight, gp_weight, kernel):
        """Check the shared arguments and build encoder, decoder and discriminator."""
        architecture = resolve_architecture(architecture, self.data_shape)
        nets.check_architecture(architecture, self.data_shape)
        self._check_undercomplete()
        if prior not in PRIORS:
            raise KerasaeError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if prior == "mixture" and self.latent_dim < 2:
            raise KerasaeError("the mixture prior lays its components on a circle and needs "
                               "latent_dim >= 2; use prior='gaussian' for a 1-D latent")
        if int(prior_components) < 1:
            raise KerasaeError(f"prior_components must be >= 1, got {prior_components}")
        check_n_critic(n_critic)
        if float(reg_weight) < 0 or float(gp_weight) < 0:
            raise KerasaeError("reg_weight and gp_weight must be >= 0, got "
                               f"{reg_weight} and {gp_weight}")
        if kernel not in kernels.MMD_KERNELS:
            raise KerasaeError(f"kernel must be one of {', '.join(kernels.MMD_KERNELS)}, "
                               f"got {kernel!r}")
        self.architecture, self.prior, self.divergence = architecture, prior, divergence
        self.prior_components, self.n_critic = int(prior_components), int(n_critic)
        self.reg_weight, self.gp_weight, self.kernel = float(reg_weight), float(gp_weight), kernel
        self.loss_names = LOSS_NAMES[divergence]
        self.metric_names = tuple(n for n in METRIC_NAMES[divergence]
                                  if n != "gp" or self.gp_weight > 0 or divergence == "critic")
        self.make_trackers()
        self.seed_generator = keras.random.SeedGenerator(0)
        filters = nets.resolve_filters(filters, self.data_shape, base=64)  # None: by size
        self.record_config(filters=filters)
        body = dict(hidden_units=tuple(hidden_units), filters=filters,
                    kernel_size=int(kernel_size), activation=activation)
        self.set_networks(
            nets.build_encoder(self.data_shape, self.latent_dim, architecture, **body),
            nets.build_decoder(self.latent_dim, self.data_shape, architecture, **body))
        # MMD needs no discriminator: then there is no second network and no second optimizer
        self.discriminator = (None if divergence == "mmd" else
                              build_discriminator(self.latent_dim, tuple(disc_units)))

    # ------------------------------------------------------------------ prior
    def sample_prior(self, n, seed=None):
        """n draws from the model's prior as a numpy array."""
        seed = self.seed_generator if seed is None else seed
        return np.asarray(draw_prior(self.prior, int(n), self.latent_dim,
                                     self.prior_components, seed=seed))

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
            return lambda: {"kind": "uniform", "dim": dim, "low": -np.sqrt(3.0),
                            "high": np.sqrt(3.0), "source": "the model's uniform prior"}
        angle = 2.0 * np.pi * np.arange(k) / k
        centres = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * MIXTURE_RADIUS
        means = np.pad(centres, [(0, 0), (0, max(dim - 2, 0))])[:, :dim]
        return lambda: {"kind": "gmm", "dim": dim, "weights": [1.0 / k] * k,
                        "means": means.tolist(), "scale_diag": [[MIXTURE_STD] * dim] * k,
                        "source": f"the model's prior: {k} Gaussians on a circle"}

    def _prior_batch(self, n):
        return draw_prior(self.prior, n, self.latent_dim, self.prior_components,
                          seed=self.seed_generator)

    # ------------------------------------------------------------------ compile / save
    def default_disc_optimizer(self):
        if self.divergence == "critic":  # WGAN-GP's betas; a faster lr keeps up with the codes
            return keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.5, beta_2=0.9)
        # WAE-GAN's beta_1; a faster rate than its 5e-4 keeps up with 16 moving latents
        return keras.optimizers.Adam(learning_rate=2e-3, beta_1=0.5)

    def compile(self, optimizer=None, disc_optimizer=None, **kwargs):
        """`optimizer` trains the autoencoder (Adam(`default_learning_rate`) by default);
        `disc_optimizer` the discriminator/critic (`default_disc_optimizer()`: for AAE and
        WAE, Adam(2e-3, beta_1=0.5) for JS, Adam(1e-3, 0.5, 0.9) for the critic: the
        papers' betas, faster rates that keep up with the moving codes).
        Both are attributes, so checkpoints hold both."""
        super().compile(optimizer=optimizer, **kwargs)
        if self.discriminator is None:
            self.disc_optimizer = None
        else:
            self.disc_optimizer = disc_optimizer or self.default_disc_optimizer()
            # built now, in the strategy's scope: built lazily inside a replica's step, its
            # slots fail under MirroredStrategy (Keras builds only `optimizer` up front)
            self.disc_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and self.disc_optimizer is not None:
            config["disc_optimizer"] = keras.optimizers.serialize(self.disc_optimizer)
        return config

    def compile_from_config(self, config):
        if not config:
            return
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(config["optimizer"])
        if config.get("disc_optimizer") is not None:
            config["disc_optimizer"] = keras.optimizers.deserialize(config["disc_optimizer"])
        self.compile(**config)
        if self.built:  # build each on its own variables so the saved slots line up
            self.optimizer.build(self._autoencoder_variables())
            if self.disc_optimizer is not None:
                self.disc_optimizer.build(self.discriminator.trainable_variables)

    def _autoencoder_variables(self):
        """What `optimizer` trains (its slots are saved in this order)."""
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    # ------------------------------------------------------------------ the loop's parts
    def autoencoder_terms(self, x, training=False):
        """(logs of the autoencoder's own terms, "loss" among them, and the codes the
        discriminator sees, in float32): the forward pass under the autoencoder's tape."""
        z = self.encoder(x, training=training)
        recon = self.reconstruction_loss(x, self.decoder(z, training=training))
        # the divergences in float32, also under mixed precision
        return {"loss": recon}, ops.cast(z, "float32")

    def code_diagnostics(self, codes):
        """Logged metrics of the frozen codes, before the discriminator's steps."""
        if self.divergence == "mmd":  # there the regularizer itself is this yardstick
            return {}
        return {"mmd": kernels.mmd_unbiased(codes, self._prior_batch(ops.shape(codes)[0]),
                                           kernel=self.kernel)}

    def discriminator_losses(self, codes):
        """(the discriminator's/critic's own loss, its logged diagnostics) on the codes."""
        z_prior = self._prior_batch(ops.shape(codes)[0])
        real = self.discriminator(z_prior, training=True)
        fake = self.discriminator(codes, training=True)
        if self.divergence == "critic":
            gp = adversarial.gradient_penalty(self.discriminator, z_prior, codes,
                                         seed=self.seed_generator)
            own = adversarial.critic_loss(real, fake)
            own = own + self.gp_weight * gp
            return own, {"critic_loss": own, "gp": gp,
                         "w1": divergences.w1_from_scores(real, fake)}
        own = adversarial.discriminator_bce(real, fake)
        logs = {"disc_loss": own, "jsd": divergences.jsd_from_logits(real, fake)}
        if self.gp_weight > 0:
            gp = adversarial.gradient_penalty(self.discriminator, z_prior, codes,
                                         seed=self.seed_generator)
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

    # ------------------------------------------------------------------ the loop
    def train_step(self, data):
        x = self._inputs(data)
        with tf.GradientTape() as tape:
            logs, codes = self.autoencoder_terms(x, training=True)
            with tape.stop_recording():
                frozen = ops.stop_gradient(codes)
                logs.update(self.code_diagnostics(frozen))
                for _ in range(self.n_critic if self.discriminator is not None else 0):
                    logs.update(self._discriminator_step(frozen))
            total = self.plus_added_losses(self.add_regularizer(logs, codes))
            scaled = self.gradient_loss(total)  # replica mean, mixed-precision loss scale
        variables = self._autoencoder_variables()
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        if self.has_hook("after_step"):
            self.after_step(x, logs)
        return self._track(logs)

    def _discriminator_step(self, codes):
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            own, logs = self.discriminator_losses(codes)
            scaled = self.gradient_loss(own, self.disc_optimizer)  # replica mean
        grads = tape.gradient(scaled, variables)
        self.disc_optimizer.apply_gradients(zip(grads, variables))
        return logs

    def compute_losses(self, x, training=False):
        """The step's outputs without its optimizer steps (validation uses it): the same
        parts in the same order, the discriminator's diagnostics included."""
        logs, codes = self.autoencoder_terms(x, training=training)
        logs.update(self.code_diagnostics(codes))
        if self.discriminator is not None:
            logs.update(self.discriminator_losses(codes)[1])
        self.add_regularizer(logs, codes)
        return logs

    def test_step(self, data):
        # "loss" is what the family's logs call it (AAE, WAE: the reconstruction loss)
        return self._track(self.compute_losses(self._inputs(data), training=False))
