"""Keras 3 layers that wrap `tfp.distributions` for variational autoencoders.

The reparameterization trick and the diagonal Gaussian posterior follow Kingma and
Welling, "Auto-Encoding Variational Bayes" (ICLR 2014); the learned Gaussian decoder
scale follows Rybkin et al., "Simple and Effective VAE Training with Calibrated Decoders"
(ICML 2021). `tfp.layers` only speaks Keras 2, so these layers build `tfd` objects inside
`call` and return plain tensors: a model that uses them saves, loads and exports like
any other Keras model, and no Distribution object ever crosses a layer boundary.
"""
import math
import keras
from keras import ops
from kerasae.probability.gaussian import gaussian_kl
from kerasae.probability.likelihoods import flat_float
from kerasae.probability.gaussian import posterior, tfd


LIKELIHOODS = ("bernoulli", "gaussian")


KL_METHODS = ("analytic", "mc")


def stateless_seed(seed):
    """An int32 pair TFP's stateless samplers accept, from an int, a pair or a Keras seed."""
    import tensorflow as tf

    if isinstance(seed, keras.random.SeedGenerator):
        seed = seed.next()
    if isinstance(seed, int):
        seed = (seed, 0)
    return tf.cast(tf.convert_to_tensor(seed), "int32")


@keras.saving.register_keras_serializable(package="kerasae")
class GaussianPosterior(keras.layers.Layer):
    """[z_mean, z_log_var] -> z: a reparameterized draw in training, the mean at inference.

    Being the identity at inference is what keeps `encode`/`reconstruct` deterministic and
    lets the exported encoder stop at (z_mean, z_log_var). `kl(...)` gives the per-example
    KL to the standard normal prior: analytic (`tfd.kl_divergence`) or a one-draw Monte
    Carlo estimate log q(z|x) - log p(z), for posteriors without a closed form.
    """

    def __init__(self, kl_method="analytic", seed=None, **kwargs):
        super().__init__(**kwargs)
        if kl_method not in KL_METHODS:
            from kerasae.errors import KerasaeError

            raise KerasaeError(f"kl must be one of {', '.join(KL_METHODS)}, got {kl_method!r}")
        self.kl_method = kl_method
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def sample(self, mean, log_var, seed=None):
        """A reparameterized draw z = mean + scale * eps (gradients reach mean and log_var)."""
        seed = self.seed_generator if seed is None else seed
        return posterior(mean, log_var).sample(seed=stateless_seed(seed))

    def call(self, inputs, training=False):
        mean, log_var = inputs
        return self.sample(mean, log_var) if training else mean

    def kl(self, mean, log_var, z=None):
        """Per-example KL(q(z|x) || N(0, I)) summed over latent dimensions: shape (batch,)."""
        return gaussian_kl(mean, log_var, z=z if self.kl_method == "mc" else None)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "kl_method": self.kl_method, "seed": self.seed}


@keras.saving.register_keras_serializable(package="kerasae")
class BernoulliLikelihood(keras.layers.Layer):
    """(x, logits) -> per-example negative log-likelihood, summed over features (nats).

    Works on logits (softplus form inside `tfd.Bernoulli`), never on sigmoid outputs, so
    saturated pixels cost finite, exact nats. Grey levels in [0, 1] are used as soft
    targets, the usual (if improper) choice for MNIST-like data.
    """

    def mean(self, logits):
        return ops.sigmoid(logits)

    def call(self, x, logits):
        x, logits = flat_float(x), flat_float(logits)
        return -ops.sum(tfd().Bernoulli(logits=logits, dtype=x.dtype).log_prob(x), axis=-1)


@keras.saving.register_keras_serializable(package="kerasae")
class GaussianLikelihood(keras.layers.Layer):
    """(x, mean) -> per-example Gaussian negative log-likelihood, summed over features.

    `scale` is the fixed standard deviation; with `learn_scale=True` one shared scale is
    learned (stored as a log so it stays positive), which calibrates the decoder and
    balances reconstruction against KL without tuning beta (Rybkin et al. 2021).
    """

    def __init__(self, scale=0.1, learn_scale=False, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            from kerasae.errors import KerasaeError

            raise KerasaeError(f"likelihood_scale must be positive, got {scale!r}")
        self.scale = float(scale)
        self.learn_scale = bool(learn_scale)
        self.log_scale = self.add_weight(
            shape=(), name="log_scale", trainable=self.learn_scale,
            initializer=keras.initializers.Constant(math.log(self.scale)))

    def call(self, x, mean):
        x, mean = flat_float(x), flat_float(mean)
        scale = ops.exp(ops.cast(self.log_scale, x.dtype))
        return -ops.sum(tfd().Normal(loc=mean, scale=scale).log_prob(x), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "learn_scale": self.learn_scale}
