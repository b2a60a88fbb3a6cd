"""`svae`: the hyperspherical VAE (S-VAE) with a von Mises-Fisher posterior.

Davidson, Falorsi, De Cao, Kipf and Tomczak, "Hyperspherical Variational Auto-Encoders"
(UAI 2018). The code lives on the unit sphere S^{d-1}: q(z|x) = vMF(mu(x), kappa(x)), the
prior is the uniform distribution on the sphere, and the loss is the negative ELBO per
example, -E_q[log p(x|z)] + KL(vMF(mu, kappa) || U(S^{d-1})), the KL in closed form
(`kerasae.probability.von_mises_fisher`: log I_v by a series, no TFP op, so scorer.onnx
converts). As in pythae 0.1.2's SVAE, the encoder gives a direction (normalised to mu) and
one `log_concentration`; kappa = softplus(log_concentration) + min_concentration, where
pythae has softplus alone: that collapsed on Fashion-MNIST (d=5, 10 epochs: kappa ~ 0, KL
~ 0, log p(x) -383 nats against the VAE's -241), and the authors' code adds 1, the
default here.

The sampler is Wood's rejection sampler with a fixed number of proposals, so fixed noise
replays it (`score_tensor`, the export's scorer). Its gradient is the paper's g_rep only:
kappa gets a gradient through w = h(eps, kappa), the correction g_cor for the rejection
step is dropped, as in the authors' code and pythae. Measured with 2e5 draws of E[mu.z],
whose exact derivative is A_m'(kappa) (tests/test_zoo3_geometry.py checks two of them):
the g_rep gradient is 20% low at d=3, kappa=1 (0.221 vs 0.276), 16% low at d=5, kappa=5
(0.048 vs 0.058), 1-5% low at d=10 or kappa=20. tfp.distributions.VonMisesFisher (TFP
0.25), measured the same way: its samples give gradients to mu and kappa, exact at d=3 (an
inverse CDF: 0.2758) and g_rep only for d != 3 (0.0483 at d=5, kappa=5; its
reparameterization_type says NOT_REPARAMETERIZED), and its while-loop sampler does not
convert to ONNX: hence the sampler here.

`encode` gives the mean direction mu (the exported encoder's first output; the second is
kappa, shape (batch, 1)); `sample` decodes uniform draws on the sphere, normalised standard
normals, drawn by kerasae_runtime's "uniform_sphere" prior for the same seed.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

import kerasae.nets as nets
from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import SCORE_DRAWS, VAE
from kerasae.probability.layers import stateless_seed
from kerasae.probability.von_mises_fisher import (
    PROPOSALS,
    log_sphere_area,
    vmf_draw,
    vmf_log_prob,
    vmf_uniform_kl,
    wood_noise,
)
from kerasae_runtime.manifest import sample_prior


@register_model("svae")
class SVAE(VAE):
    """Hyperspherical VAE (S-VAE): von Mises-Fisher posterior, uniform prior on the sphere."""

    tiny_config = {"latent_dim": 3, "hidden_units": (16,), "filters": (4, 8)}

    def __init__(self, *, min_concentration=1.0, **kwargs):
        """`latent_dim` is the dimension of the space around the sphere (>= 2: S^{d-1});
        kappa = softplus(log_concentration) + `min_concentration` (1: the authors' code;
        0: pythae's, which collapsed to kappa ~ 0 on Fashion-MNIST). A brought `encoder`
        returns [direction (latent_dim), log_concentration (1)]."""
        latent_dim = self.arguments["latent_dim"]
        if int(latent_dim) < 2:
            raise KerasaeError(
                f"svae needs latent_dim >= 2 (the sphere S^(d-1)), got {latent_dim}"
            )
        if not (isinstance(min_concentration, (int, float)) and min_concentration >= 0):
            raise KerasaeError(f"min_concentration must be >= 0, got {min_concentration!r}")
        self.min_concentration = float(min_concentration)
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(None)

    def build_encoder(self, output_names=("z",), **overrides):
        """x -> [mu (unit, latent_dim), kappa (1)]: the direction normalised, kappa =
        softplus(log_concentration) + min_concentration (pythae's Encoder_SVAE_MLP heads)."""
        x = keras.Input(shape=self.data_shape, name="x")
        if self.given_encoder is not None:
            direction, log_kappa = self.given_encoder(x)
            if direction.shape[-1] != self.latent_dim or log_kappa.shape[-1] != 1:
                raise KerasaeError(
                    f"the svae encoder must return [direction ({self.latent_dim}), "
                    "log_concentration (1)]"
                )
        else:
            h = nets.features(x, self.architecture, **self.network_options(**overrides))
            direction = layers.Dense(self.latent_dim, name="direction")(h)
            log_kappa = layers.Dense(1, name="log_concentration")(h)
        mu = layers.UnitNormalization(dtype="float32", name="z_mean")(direction)
        kappa = layers.Activation("softplus", dtype="float32", name="softplus")(log_kappa)
        kappa = layers.Rescaling(
            1.0, offset=self.min_concentration, dtype="float32", name="concentration"
        )(kappa)
        return keras.Model(x, [mu, kappa], name="encoder")

    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training)[0], training=training)

    def _noise(self, n, seed):
        """Wood's noise for n draws (what `wood_noise` draws with numpy), drawn with
        TensorFlow's stateless ops from `seed` (an int, a pair or a SeedGenerator)."""
        m, half = self.latent_dim, 0.5 * (self.latent_dim - 1)
        seeds = tf.random.experimental.stateless_split(stateless_seed(seed), 4)
        g1, g2 = (tf.random.stateless_gamma((n, PROPOSALS), seeds[i], half) for i in (0, 1))
        eps = g1 / (g1 + g2)  # Beta(half, half)
        u = tf.random.stateless_uniform((n, PROPOSALS), seeds[2])
        return eps, u, tf.random.stateless_normal((n, m - 1), seeds[3])

    def posterior_draws(self, x, draws=1, seed=None, training=False):
        """(x, mu, kappa, z): `draws` z ~ vMF(mu, kappa) per example, example-major
        (`seed`: an int or pair makes them repeatable)."""
        mu, kappa = self.encoder(x, training=training)
        if draws > 1:
            x, mu, kappa = (ops.repeat(t, draws, axis=0) for t in (x, mu, kappa))
        seed = self.seed_generator if seed is None else seed
        return x, mu, kappa, vmf_draw(mu, kappa, *self._noise(ops.shape(mu)[0], seed))

    def log_prior(self, z):
        """log p(z) = -log |S^{d-1}|, the uniform density on the sphere (surface measure)."""
        return ops.zeros_like(z[:, 0]) - log_sphere_area(self.latent_dim)

    def kl_divergence(self, mean, kappa, z):
        """KL(vMF(mu, kappa) || U(S^{d-1})): closed form, or with kl="mc" the one-draw
        log q(z|x) - log p(z)."""
        if self.posterior.kl_method == "mc":
            return self.monte_carlo_kl(mean, kappa, z)
        return vmf_uniform_kl(kappa, self.latent_dim)

    def monte_carlo_kl(self, mean, kappa, z):
        """log vMF(z; mu, kappa) - log U(z), both w.r.t. the sphere's surface measure."""
        return vmf_log_prob(z, mean, kappa) - self.log_prior(z)

    def encode_distribution(self, x, batch_size=256):
        """(mu, kappa) of q(z|x): the mean direction and the concentration (batch, 1)."""
        both = self._batched(
            lambda b: ops.concatenate(self.encoder(b, training=False), axis=-1), x, batch_size
        )
        return both[:, :-1], both[:, -1:]

    def score_tensor(self, x, samples=SCORE_DRAWS, seed=0):
        """The negative ELBO at `samples` fixed vMF draws per example (Wood's noise drawn
        once with numpy from `seed`): the graph scorer.onnx holds."""
        eps, u, normal = wood_noise(np.random.default_rng(seed), samples, self.latent_dim)
        mu, kappa = self.encoder(x, training=False)
        n = ops.shape(mu)[0]
        x, mu, kappa = (ops.repeat(t, samples, axis=0) for t in (x, mu, kappa))
        noise = (tf.tile(ops.cast(t, mu.dtype), [n, 1]) for t in (eps, u, normal))
        z = vmf_draw(mu, kappa, *noise)
        total = self.decoder_nll(x, z) + self.kl_divergence(mu, kappa, z)
        return ops.mean(ops.reshape(total, (-1, samples)), axis=1)

    def prior_spec(self):
        """The export manifest's prior: uniform on the sphere, kerasae_runtime's kind."""
        return {
            "kind": "uniform_sphere",
            "dim": self.latent_dim,
            "source": f"the model's uniform prior on the sphere S^{self.latent_dim - 1}",
        }

    def sample(self, n, seed=None):
        """Decoder means of `n` uniform draws on the sphere (kerasae_runtime's draws)."""
        return self.decode(sample_prior(self.prior_spec(), int(n), seed))
