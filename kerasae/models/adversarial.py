"""The two-optimizer base of every model with a discriminator or critic on its codes
(or, for vaegan, on its images).

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
a second encoder pass. A family on this loop overrides those parts: the prior matching of
AAE and WAE is `kerasae.models.prior_matching`, FactorVAE's total correlation its own.

This is the one documented exception to "families override only compute_losses": two
optimizers take turns within a step, so the loop lives here, once. It still validates its
outputs against the declared names, adds layers' `add_loss` terms and calls `after_step`,
like the base step.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from kerasae.errors import KerasaeError
from kerasae.models.networks import NetworkAutoencoder


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


class AdversarialAutoencoder(NetworkAutoencoder):
    """Base class: an autoencoder and a discriminator on its codes, with an optimizer each.

    A subclass builds `self.discriminator` (None: no second network, no second optimizer)
    and sets `self.n_critic`, and overrides the loop's parts below."""

    discriminator = None
    n_critic = 1

    # ------------------------------------------------------------------ compile / save
    def default_disc_optimizer(self):
        """The discriminator's optimizer when `compile` gets none (families override it)."""
        return keras.optimizers.Adam(learning_rate=1e-3)

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
        discriminator sees, in float32): the forward pass under the autoencoder's tape.
        The "codes" are whatever the discriminator judges: a tensor of codes (aae, wae,
        factor_vae), or a structure of tensors (vaegan: real, reconstructed and
        generated images); the loop stops their gradients leaf by leaf."""
        z = self.encoder(x, training=training)
        recon = self.reconstruction_loss(x, self.decoder(z, training=training))
        # the divergences in float32, also under mixed precision
        return {"loss": recon}, ops.cast(z, "float32")

    def code_diagnostics(self, codes):
        """Logged metrics of the frozen codes, before the discriminator's steps."""
        return {}

    def discriminator_losses(self, codes):
        """(the discriminator's/critic's own loss, its logged diagnostics) on the codes."""
        raise NotImplementedError

    def add_regularizer(self, logs, codes):
        """Log the term that pulls the codes where the discriminator says they should be
        and return the total the autoencoder's optimizer minimises."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop
    def train_step(self, data):
        x = self._inputs(data)
        with tf.GradientTape() as tape:
            logs, codes = self.autoencoder_terms(x, training=True)
            with tape.stop_recording():
                # codes may be a structure (vaegan: the images its discriminator judges)
                frozen = keras.tree.map_structure(ops.stop_gradient, codes)
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
