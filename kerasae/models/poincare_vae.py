"""`poincare_vae`: a VAE whose code lives on the Poincaré ball (hyperbolic latent space).

Mathieu, Le Lan, Maddison, Tomioka and Teh, "Continuous Hierarchical Representations with
Poincaré Variational Auto-Encoders" (NeurIPS 2019). The latent space is the Poincaré ball of
curvature -c; the posterior is a wrapped normal N^W(mu(x), diag sigma(x)^2) with mu(x) =
exp_0 of the encoder's Euclidean mean, the prior the wrapped normal N^W(0, prior_scale^2 I),
and the loss the negative ELBO per example, -log p(x|z) + log q(z|x) - log p(z) at one
reparameterised draw z = exp_mu(sigma eps / lambda_mu) (the KL has no closed form: its
one-draw Monte Carlo estimate, as the paper and pythae 0.1.2's PoincareVAE use). Both
densities are w.r.t. the ball's Riemannian volume (`kerasae.probability.poincare`), so
their ratio, the importance weight of `log_weights`, is exact.

Faithful to pythae's defaults: the wrapped normal for posterior and prior (pythae's
"riemannian_normal" option is not offered here), curvature 1, prior scale 1, and a plain
decoder on the ball's coordinates (pythae's; the paper's gyroplane first layer is not
implemented). Unlike pythae, whose encoder mean is used as a point of the ball as it
comes (and may lie outside it), the mean is mapped onto the ball by exp_0, as in the
paper's code. `encode` gives that mean (the exported encoder's first output, its second
log sigma^2); `sample` decodes prior draws, kerasae_runtime's "wrapped_normal" prior for
the same seed.
"""

import keras
import numpy as np
from keras import ops

import kerasae.nets as nets
from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import SCORE_DRAWS, VAE
from kerasae.probability.layers import reparameterized_draw
from kerasae.probability.poincare import (
    PoincareExpMap0,
    wrapped_normal_draw,
    wrapped_normal_log_prob,
)
from kerasae_runtime.manifest import sample_prior


@register_model("poincare_vae")
class PoincareVAE(VAE):
    """Poincaré VAE: wrapped normal posterior and prior on the Poincaré (hyperbolic) ball."""

    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}

    def __init__(self, *, curvature=1.0, prior_scale=1.0, **kwargs):
        """`curvature`: c > 0, the ball of curvature -c (radius 1 / sqrt(c));
        `prior_scale`: the prior wrapped normal's standard deviation. A brought `encoder`
        returns [Euclidean mean, log-variance], the mean mapped onto the ball by exp_0."""
        for name, value in (("curvature", curvature), ("prior_scale", prior_scale)):
            if not (isinstance(value, (int, float)) and value > 0):
                raise KerasaeError(f"{name} must be a positive number, got {value!r}")
        self.curvature, self.prior_scale = float(curvature), float(prior_scale)
        super().__init__(**kwargs)

    def build_encoder(self, output_names=("z",), **overrides):
        """x -> [mu on the ball (exp_0 of the Euclidean head), log sigma^2]."""
        if self.given_encoder is not None:
            euclidean = super().build_encoder(output_names=("mean", "log_var"))
        else:  # named apart from the outer model, whose outputs the manifest names
            euclidean = nets.build_encoder(
                self.data_shape,
                self.latent_dim,
                self.architecture,
                name="euclidean_encoder",
                output_names=("z_euclidean", "z_log_var_head"),
                **self.network_options(**overrides),
            )
        x = keras.Input(shape=self.data_shape, name="x")
        mean, log_var = euclidean(x)
        mu = PoincareExpMap0(self.curvature, dtype="float32", name="z_mean")(mean)
        log_var = keras.layers.Activation("linear", dtype="float32", name="z_log_var")(log_var)
        return keras.Model(x, [mu, log_var], name="encoder")

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training)[0], training=training)

    def posterior_draws(self, x, draws=1, seed=None, training=False):
        """(x, mu, log_var, z): `draws` z ~ N^W(mu, diag exp(log_var)) per example,
        example-major (`seed`: an int or pair makes them repeatable)."""
        mu, log_var = self.encoder(x, training=training)
        if draws > 1:
            x, mu, log_var = (ops.repeat(t, draws, axis=0) for t in (x, mu, log_var))
        # eps ~ N(0, I): the VAE's stateless draw at mean 0, scale 1
        zero = ops.zeros_like(mu)
        eps = reparameterized_draw(
            zero, zero, self.posterior.seed_generator if seed is None else seed
        )
        return x, mu, log_var, wrapped_normal_draw(mu, log_var, eps, self.curvature)

    def log_prior(self, z):
        """log N^W(z; 0, prior_scale^2 I) per example (Riemannian volume)."""
        log_var = 2.0 * np.log(self.prior_scale)
        return wrapped_normal_log_prob(
            z, ops.zeros_like(z), ops.full_like(z, log_var), self.curvature
        )

    def kl_divergence(self, mean, log_var, z):
        """The one-draw KL estimate log q(z|x) - log p(z) (no closed form on the ball)."""
        return self.monte_carlo_kl(mean, log_var, z)

    def monte_carlo_kl(self, mean, log_var, z):
        """log N^W(z; mu, sigma^2) - log N^W(z; 0, prior_scale^2), one base measure."""
        return wrapped_normal_log_prob(z, mean, log_var, self.curvature) - self.log_prior(z)

    def score_tensor(self, x, samples=SCORE_DRAWS, seed=0):
        """The negative ELBO at `samples` fixed eps per example (drawn once with numpy
        from `seed`), z = exp_mu(sigma eps / lambda_mu): the graph scorer.onnx holds."""
        eps = np.random.default_rng(seed).standard_normal((samples, self.latent_dim))
        mu, log_var = self.encoder(x, training=False)
        n = ops.shape(mu)[0]
        x, mu, log_var = (ops.repeat(t, samples, axis=0) for t in (x, mu, log_var))
        eps = ops.tile(ops.cast(eps, mu.dtype), (n, 1))
        z = wrapped_normal_draw(mu, log_var, eps, self.curvature)
        total = self.decoder_nll(x, z) + self.kl_divergence(mu, log_var, z)
        return ops.mean(ops.reshape(total, (-1, samples)), axis=1)

    def prior_spec(self):
        """The export manifest's prior: kerasae_runtime's wrapped normal at the origin."""
        return {
            "kind": "wrapped_normal",
            "dim": self.latent_dim,
            "curvature": self.curvature,
            "scale": self.prior_scale,
            "source": "the model's wrapped normal prior on the Poincaré ball "
            f"(c={self.curvature:g})",
        }

    def sample(self, n, seed=None):
        """Decoder means of `n` prior draws (kerasae_runtime's draws for the same seed)."""
        return self.decode(sample_prior(self.prior_spec(), int(n), seed))
