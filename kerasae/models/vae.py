"""`vae` and `beta_vae`: variational autoencoders on TensorFlow Probability.

VAE: Kingma and Welling, "Auto-Encoding Variational Bayes" (ICLR 2014). beta-VAE:
Higgins et al., "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework" (ICLR 2017), whose beta > 1 trades reconstruction for a more factorised code.
The loss is the negative (beta-)ELBO per example, summed over pixels and latent
dimensions and averaged over the batch: reconstruction NLL + beta * KL(q(z|x) || N(0, I)).

Export contract: `encoder` maps x to [z_mean, z_log_var] (deterministic, no TFP ops),
`decoder` maps z to the mean image in [0, 1]. The reparameterized draw lives in the
`posterior` layer between them, the identity at inference.

The variational families (iwae, beta_tcvae, info_vae, vamp) subclass `VAE` and reuse its
pieces: `posterior_draws` (encode, draw z ~ q(z|x)), `decoder_nll` (-log p(x|z)),
`log_prior` (N(0, I) here, a mixture in vamp), `kl_divergence`, and `log_weights`, the
importance weights log p(x|z) + log p(z) - log q(z|x) that the IWAE bound and
`kerasae.evaluation.likelihood` (the log p(x) estimate of `kerasae evaluate
--log-likelihood`) share. A variant that only adds terms on the posterior (DIP-VAE's
covariance penalty, say) overrides `posterior_penalties` and declares them in
`loss_names` (docs/plugins.md, "A variant of an existing family").
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from kerasae.errors import KerasaeError
from kerasae.models.networks import NetworkAutoencoder, logits_of
from kerasae.models.registry import register_model
from kerasae.probability.gaussian import posterior_log_prob, standard_normal_log_prob
from kerasae.probability.layers import (
    LIKELIHOODS,
    BernoulliLikelihood,
    GaussianLikelihood,
    GaussianPosterior,
)

SCORE_DRAWS = 4  # posterior draws the anomaly score averages (fixed noise, see score_tensor)


@register_model("vae")
class VAE(NetworkAutoencoder):
    """Variational autoencoder: Gaussian posterior, Bernoulli or Gaussian decoder (TFP)."""

    loss_names = ("loss", "reconstruction", "kl")
    metric_names = ("beta",)  # the current KL weight: logged while it moves (`log_beta`)
    generative = True
    score_description = (
        f"negative ELBO in nats (beta = 1), mean of {SCORE_DRAWS} fixed posterior draws"
    )
    #: False for subclasses whose objective has no single KL weight to anneal (iwae,
    #: info_vae): they get no `beta_variable`, so --beta-schedule refuses them clearly
    uses_beta = True
    fixed_params = ("loss",)  # set by the likelihood: bce for bernoulli, mse for gaussian
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}

    def __init__(
        self,
        *,
        beta=1.0,
        likelihood="bernoulli",
        likelihood_scale=0.1,
        learn_scale=False,
        kl="analytic",
        **kwargs,
    ):
        """`beta`: the KL weight (1: the ELBO); `likelihood`: the decoder's, bernoulli (on
        logits) or gaussian of `likelihood_scale` (learned with `learn_scale`); `kl`:
        analytic or mc (one draw). A brought `encoder` returns [z_mean, z_log_var]; a
        brought `decoder` returns the mean image, ending in Activation("sigmoid") with the
        bernoulli likelihood."""
        if likelihood not in LIKELIHOODS:
            raise KerasaeError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}"
            )
        super().__init__(loss="bce" if likelihood == "bernoulli" else "mse", **kwargs)
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise KerasaeError(f"beta must be a number >= 0, got {beta!r}")
        self.beta = float(beta)
        self.likelihood = likelihood
        self.resolve_networks()
        encoder = self.build_encoder(output_names=("z_mean", "z_log_var"))
        decoder, self.decoder_logits = self.build_vae_decoder()
        self.posterior = GaussianPosterior(kl_method=kl, name="posterior")
        self.likelihood_layer = (
            BernoulliLikelihood(name="likelihood")
            if likelihood == "bernoulli"
            else GaussianLikelihood(likelihood_scale, learn_scale, name="likelihood")
        )
        if self.uses_beta:
            # the current beta: a variable, so BetaAnnealing changes it under compiled steps
            self.beta_variable = self.add_weight(
                shape=(),
                name="beta",
                trainable=False,
                initializer=keras.initializers.Constant(self.beta),
            )
        self.set_networks(encoder, decoder)

    def make_trackers(self):
        """The base's trackers, `beta` only once `log_beta` was called: a constant weight
        logged every epoch is a flat chart."""
        super().make_trackers()
        if not getattr(self, "beta_logged", False):
            self.trackers.pop("beta", None)

    def log_beta(self):
        """Log the KL weight with the losses (BetaAnnealing calls it: the weight moves)."""
        if not getattr(self, "beta_logged", False):
            self.beta_logged = True
            self.make_trackers()
            self.train_function = self.test_function = None  # rebuilt with its tracker

    def build_vae_decoder(self):
        """(decoder z -> mean image, logits net z -> logits), sharing every layer.

        The Bernoulli likelihood needs the logits (exact nats at saturated pixels); the
        exported decoder needs the mean. Both are views of one graph, so weights are
        stored once. A brought decoder gives its logits from before its final sigmoid."""
        if self.given_decoder is not None:
            decoder = self.build_decoder()
            return decoder, (logits_of(decoder) if self.likelihood == "bernoulli" else None)
        logits_net = self.build_decoder(output_activation="linear", name="decoder_logits")
        logits = logits_net.get_layer("x_hat").input  # nets ends in an activation named x_hat
        logits_net = keras.Model(logits_net.input, logits, name="decoder_logits")
        mean = layers.Activation("sigmoid", dtype="float32", name="x_hat")(logits)
        return keras.Model(logits_net.input, mean, name="decoder"), logits_net

    # ------------------------------------------------------------------ forward
    def call(self, x, training=False):
        z = self.posterior(self.encoder(x, training=training), training=training)
        return self.decoder(z, training=training)

    def posterior_draws(self, x, draws=1, seed=None, training=False):
        """(x, mean, log_var, z): `draws` reparameterized z ~ q(z|x) per example.

        With draws > 1 every returned tensor is repeated example-major (rows
        i * draws ... i * draws + draws - 1 belong to example i), so an example's draws do
        not depend on the batch size. `seed` (an int or pair) makes them repeatable.
        """
        mean, log_var = self.encoder(x, training=training)
        if draws > 1:
            x, mean, log_var = (ops.repeat(t, draws, axis=0) for t in (x, mean, log_var))
        return x, mean, log_var, self.posterior.sample(mean, log_var, seed=seed)

    def decoder_nll(self, x, z, training=False):
        """-log p(x|z) per example in nats, summed over features: shape (batch,)."""
        if self.likelihood == "bernoulli":  # logits: exact nats at saturated pixels
            return self.likelihood_layer(x, self.decoder_logits(z, training=training))
        return self.likelihood_layer(x, self.decoder(z, training=training))

    def log_prior(self, z):
        """log p(z) per example, summed over latent dimensions: N(0, I) here."""
        return standard_normal_log_prob(z)

    def kl_divergence(self, mean, log_var, z):
        """Per-example KL(q(z|x) || p(z)): analytic, or log q(z|x) - log p(z) at the draw
        `z` with kl="mc" (the `kl` argument)."""
        return self.posterior.kl(mean, log_var, z)

    def monte_carlo_kl(self, mean, log_var, z):
        """log q(z|x) - log p(z) per example at the draw z: the one-draw KL estimate with
        this model's own prior (what a prior without a closed-form KL needs)."""
        return posterior_log_prob(z, mean, log_var) - self.log_prior(z)

    def weight_terms(self, x, k=1, seed=None, training=False):
        """(nll, kl), each (batch, k), at `k` draws z ~ q(z|x) per example: -log p(x|z) and
        the one-draw Monte Carlo KL log q(z|x) - log p(z). `log_weights` is -(nll + kl)."""
        x, mean, log_var, z = self.posterior_draws(x, k, seed, training)
        nll = self.decoder_nll(x, z, training)
        kl = self.monte_carlo_kl(mean, log_var, z)
        return ops.reshape(nll, (-1, k)), ops.reshape(kl, (-1, k))

    def log_weights(self, x, k=1, seed=None, training=False):
        """(batch, k) log importance weights log p(x|z) + log p(z) - log q(z|x) of `k`
        draws z ~ q(z|x) per example (Burda et al. 2016): their mean is a one-draw ELBO
        each, their log-mean-exp the IWAE bound, tending to log p(x) as k grows."""
        nll, kl = self.weight_terms(x, k, seed, training)
        return -(nll + kl)

    def negative_elbo(self, x, beta=None, seed=None, training=False, draws=1):
        """Per-example (reconstruction NLL, KL, beta-weighted total), each of shape (batch,).

        Reparameterized draws estimate the expected log-likelihood, in evaluation too: the
        ELBO is an expectation over q(z|x), and decoding only the mean would understate it.
        `draws` > 1 averages several (one encoder pass, one decoder pass over all draws);
        `seed` (an int or pair) makes them repeatable.
        """
        return self._elbo_parts(x, beta, seed, training, draws)[1]

    def _elbo_parts(self, x, beta=None, seed=None, training=False, draws=1):
        """((mean, log_var, z), (nll, kl, total)): `negative_elbo` and the draws it used."""
        x, mean, log_var, z = self.posterior_draws(x, draws, seed, training)
        nll = self.decoder_nll(x, z, training)
        kl = self.kl_divergence(mean, log_var, z)
        if draws > 1:
            nll, kl = (ops.mean(ops.reshape(t, (-1, draws)), axis=1) for t in (nll, kl))
        if beta is None:
            beta = self.beta_variable if self.uses_beta else 1.0
        beta = ops.cast(beta, nll.dtype)
        return (mean, log_var, z), (nll, kl, nll + beta * kl)

    def posterior_penalties(self, mean, log_var, z):
        """Extra loss terms on the posterior, for a variant: {name: scalar}, each weighted
        already, added to the loss and logged under its name (declare each in
        `loss_names`). `mean`, `log_var`: q(z|x) of the batch; `z`: its draws. None here."""
        return {}

    def compute_losses(self, x, training=False):
        (mean, log_var, z), (nll, kl, total) = self._elbo_parts(x, training=training)
        losses = {
            "loss": ops.mean(total),
            "reconstruction": ops.mean(nll),
            "kl": ops.mean(kl),
            "beta": ops.convert_to_tensor(self.beta_variable),
        }
        for name, value in self.posterior_penalties(mean, log_var, z).items():
            losses[name] = value
            losses["loss"] = losses["loss"] + value
        return losses

    # ------------------------------------------------------------------ inference
    def encode(self, x, batch_size=256):
        """The posterior mean z_mean (deterministic)."""
        return self._batched(lambda b: self.encoder(b, training=False)[0], x, batch_size)

    def encode_distribution(self, x, batch_size=256):
        """(z_mean, z_log_var) of q(z|x)."""
        both = self._batched(
            lambda b: ops.stack(self.encoder(b, training=False), axis=1), x, batch_size
        )
        return both[:, 0], both[:, 1]

    def score(self, x, batch_size=256, samples=SCORE_DRAWS, seed=0):
        """Per-example negative ELBO in nats (beta = 1, the bound on -log p(x)): the anomaly
        score. Averaged over `samples` fixed draws of the noise, the same for every
        example, so it is repeatable and does not depend on the batch."""
        fns = self.__dict__.setdefault("_score_fns", {})  # plain dict: Keras must not track it
        if (samples, seed) not in fns:
            # compiled once, for every batch size: eager TFP is several times slower, and
            # `kerasae train` scores the whole training set for the anomaly threshold
            spec = [tf.TensorSpec((None, *self.data_shape), "float32")]
            fns[samples, seed] = tf.function(
                lambda b: self.score_tensor(b, samples, seed), input_signature=spec
            )
        return self._batched(fns[samples, seed], x, batch_size)

    def score_tensor(self, x, samples=SCORE_DRAWS, seed=0):
        """The negative ELBO of a batch at z = mean + std * eps for `samples` fixed eps
        (drawn once from `seed`): the graph the export's scorer.onnx holds, eps a constant,
        and the same decoder likelihood and KL the training step uses."""
        eps = np.random.default_rng(seed).standard_normal((samples, self.latent_dim))
        mean, log_var = self.encoder(x, training=False)
        z = mean[:, None] + ops.exp(0.5 * log_var)[:, None] * ops.cast(eps, mean.dtype)[None]
        z = ops.reshape(z, (-1, self.latent_dim))  # example-major, as posterior_draws
        x, mean, log_var = (ops.repeat(t, samples, axis=0) for t in (x, mean, log_var))
        total = self.decoder_nll(x, z) + self.kl_divergence(mean, log_var, z)
        return ops.mean(ops.reshape(total, (-1, samples)), axis=1)

    def sample(self, n, seed=None):
        """Decoder means of `n` draws from the prior N(0, I): shape (n, *input_shape)."""
        z = np.random.default_rng(seed).standard_normal((int(n), self.latent_dim))
        return self.decode(z.astype("float32"))


@register_model("beta_vae")
class BetaVAE(VAE):
    """beta-VAE (Higgins et al. 2017): a VAE whose KL weight beta > 1 (default 4)."""

    def __init__(self, *, beta=4.0, **kwargs):
        super().__init__(beta=beta, **kwargs)
