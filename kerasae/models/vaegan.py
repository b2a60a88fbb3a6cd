"""`vaegan`: VAE/GAN (Larsen, Sønderby, Larochelle and Winther, "Autoencoding beyond pixels
using a learned similarity metric", ICML 2016).

A VAE whose decoder is also a GAN's generator, and whose reconstruction is measured in the
discriminator's feature space instead of pixels. A discriminator Dis judges images: real
x, reconstructions x~ = Dec(z), z ~ q(z|x), and generations x_p = Dec(z_p), z_p ~ N(0, I).
With Dis_l the output of its l-th hidden layer (`reconstruction_layer`):

    L_prior = KL(q(z|x) || N(0, I))
    L_llike = -log N(Dis_l(x); Dis_l(x~), I)      (the paper's eq. 9, per example, in nats)
    L_GAN   = BCE(Dis(x), 1) + BCE(Dis(x~), 0) + BCE(Dis(x_p), 0)   (the discriminator's loss)

and, as in the paper's Algorithm 1, each network follows its own objective:

    encoder        beta * L_prior + L_llike
    decoder        (1 - s) * L_llike - s * L_GAN       (s = `adversarial_loss_scale`)
    discriminator  L_GAN

The paper writes the decoder's as gamma * L_llike - L_GAN: gamma = (1 - s) / s, the
same up to a scale Adam ignores; s is pythae's parameterisation. The decoder plays the
minimax (saturating) game, as the paper and pythae do.

Training runs on the shared two-optimizer loop of `kerasae.models.adversarial`; the
"codes" its discriminator sees are the images x, x~ and x_p. The encoder and decoder
share one optimizer step, so the split is made with stop_gradient: the GAN term and the
decoder's share of L_llike go through a second decoder pass on stop_gradient(z), so the
encoder gets no GAN gradient, and the decoder none from the prior:

    total = beta L_prior + L_llike(Dec(z)) - s L_llike(Dec(sg z)) - s L_GAN(Dec(sg z), Dec(z_p))

(the decoder's gradient: (1 - s) dL_llike - s dL_GAN; the encoder's: that of beta L_prior +
L_llike). Logged: `loss` (the encoder's objective, beta * KL + L_llike), `reconstruction`
(L_llike), `kl`, `gen_loss` (-L_GAN's decoder terms, what the decoder's s weighs) and the
metric `disc_loss` (L_GAN). Not implemented: pythae's equilibrium/margin heuristic, which
skips the discriminator's or the decoder's update when the other is far ahead.

Inference is the VAE's: `encode` is the posterior mean, `sample` decodes N(0, I) draws
(the export's prior is the standard normal), and `score`/`log_weights` use the decoder's
pixel likelihood (Bernoulli by default), which this objective does not train: a valid
bound for that likelihood, not the model's own feature-space objective.
"""

import keras
from keras import layers, ops

from kerasae.errors import KerasaeError
from kerasae.models.adversarial import AdversarialAutoencoder, check_n_critic
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE
from kerasae.probability import adversarial
from kerasae.probability.likelihoods import gaussian_nll


def build_image_discriminator(data_shape, units, name="discriminator"):
    """An MLP from an image to one logit: pythae's `Discriminator_MLP` shape (one hidden
    layer of 256, ReLU) by default. No normalisation layers (batch statistics would mix
    real and generated images)."""
    x = keras.Input(shape=tuple(data_shape), name="x")
    h = layers.Flatten(name="disc_flatten")(x)
    for i, width in enumerate(units):
        h = layers.Dense(width, activation="relu", name=f"disc_dense{i}")(h)
    return keras.Model(x, layers.Dense(1, dtype="float32", name="score")(h), name=name)


@register_model("vaegan")
class VAEGAN(VAE, AdversarialAutoencoder):
    """VAE/GAN (Larsen et al. 2016): reconstruction in a discriminator's feature space."""

    loss_names = ("loss", "reconstruction", "kl", "gen_loss")
    metric_names = ("disc_loss", "beta")
    generative = True
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8), "disc_units": (16,)}

    def __init__(
        self,
        *,
        adversarial_loss_scale=0.5,
        reconstruction_layer=-1,
        disc_units=(256,),
        n_critic=1,
        **kwargs,
    ):
        """`adversarial_loss_scale` s in [0, 1]: the decoder minimises (1 - s) L_llike -
        s L_GAN (pythae's default 0.5; the paper's gamma is (1 - s) / s);
        `reconstruction_layer` l: the discriminator's hidden layer whose features L_llike
        compares, 1 to len(disc_units), -1 the last (pythae's -1 is its sigmoid output;
        here the deepest features before the logit); `disc_units`: the discriminator's
        hidden layers (pythae's MLP: one of 256); `n_critic`: its steps per step."""
        if isinstance(adversarial_loss_scale, bool) or not (
            isinstance(adversarial_loss_scale, (int, float)) and 0 <= adversarial_loss_scale <= 1
        ):
            raise KerasaeError(
                "adversarial_loss_scale must be a number in [0, 1], "
                f"got {adversarial_loss_scale!r}"
            )
        units = tuple(int(u) for u in disc_units)
        depth = len(units)
        if not units or not (
            isinstance(reconstruction_layer, int)
            and (reconstruction_layer == -1 or 1 <= reconstruction_layer <= depth)
        ):
            raise KerasaeError(
                f"reconstruction_layer must be -1 or 1..{depth} (the discriminator's hidden "
                f"layers, disc_units={units}), got {reconstruction_layer!r}"
            )
        check_n_critic(n_critic)
        super().__init__(**kwargs)
        self.adversarial_loss_scale = float(adversarial_loss_scale)
        self.reconstruction_layer = depth if reconstruction_layer == -1 else reconstruction_layer
        self.n_critic = int(n_critic)
        self.discriminator = build_image_discriminator(self.data_shape, units)
        features = self.discriminator.get_layer(f"disc_dense{self.reconstruction_layer - 1}")
        # Dis_l: a view of the discriminator's graph (its weights are stored once)
        self.disc_features = keras.Model(
            self.discriminator.input, features.output, name="disc_features"
        )
        self.seed_generator = keras.random.SeedGenerator(0)  # the prior draws z_p

    def default_disc_optimizer(self):
        # the paper's rate (it used RMSProp at 3e-4 for every network) with DCGAN's
        # beta_1; at Adam's 1e-3 the discriminator's features, the metric L_llike is
        # measured in, moved faster than a short fit's reconstructions improved
        return keras.optimizers.Adam(learning_rate=3e-4, beta_1=0.5)

    # ------------------------------------------------------------------ the objective
    def feature_nll(self, x, x_tilde):
        """L_llike per example, (batch,): -log N(Dis_l(x); Dis_l(x~), I) in nats."""
        n = ops.shape(x)[0]
        feats = self.disc_features(ops.concatenate([x, x_tilde], axis=0), training=False)
        return gaussian_nll(feats[:n], feats[n:], 0.0)

    # ------------------------------------------------- the adversarial loop's four parts
    def autoencoder_terms(self, x, training=False):
        x, mean, log_var, z = self.posterior_draws(x, training=training)
        n = ops.shape(z)[0]
        x = ops.cast(x, "float32")
        kl = ops.mean(self.kl_divergence(mean, log_var, z))
        llike = ops.mean(self.feature_nll(x, self.decoder(z, training=training)))
        # the decoder's own pass: no gradient reaches the encoder through it
        z_prior = keras.random.normal(ops.shape(z), seed=self.seed_generator, dtype=z.dtype)
        both = self.decoder(
            ops.concatenate([ops.stop_gradient(z), z_prior], axis=0), training=training
        )
        x_tilde, x_prior = ops.cast(both[:n], "float32"), ops.cast(both[n:], "float32")
        beta = ops.convert_to_tensor(self.beta_variable)
        logs = {
            "loss": llike + ops.cast(beta, kl.dtype) * kl,
            "reconstruction": llike,
            "kl": kl,
            "beta": beta,
        }
        images = {
            "x": x,
            "x_tilde": x_tilde,
            "x_prior": x_prior,
            # L_llike again, through the decoder's own pass (the decoder's share of it)
            "decoder_llike": ops.mean(self.feature_nll(x, x_tilde)),
        }
        return logs, images

    def discriminator_losses(self, codes):
        n = ops.shape(codes["x"])[0]
        logits = self.discriminator(
            ops.concatenate([codes["x"], codes["x_tilde"], codes["x_prior"]], axis=0),
            training=True,
        )
        real, tilde, prior = logits[:n], logits[n : 2 * n], logits[2 * n :]
        own = adversarial.discriminator_bce(real, tilde) + adversarial.fake_bce(prior)
        return own, {"disc_loss": own}

    def add_regularizer(self, logs, codes):
        n = ops.shape(codes["x_tilde"])[0]
        logits = self.discriminator(
            ops.concatenate([codes["x_tilde"], codes["x_prior"]], axis=0), training=False
        )
        # -L_GAN's terms that depend on the decoder (the minimax generator)
        logs["gen_loss"] = -(adversarial.fake_bce(logits[:n]) + adversarial.fake_bce(logits[n:]))
        s = self.adversarial_loss_scale
        return logs["loss"] - s * codes["decoder_llike"] + s * logs["gen_loss"]

    # VAE's single-objective compute_losses would shadow the loop's (VAE comes first)
    compute_losses = AdversarialAutoencoder.compute_losses
