"""Plain-Keras twins of kerasae families, for `benchmarks/train_throughput.py`.

A twin is a functional `keras.Model` on a kerasae model's own encoder and decoder, trained
by Keras's own `fit` with a compile loss plus `add_loss` layers, as a keras.io user would
write it. The objectives are the families' own: the layers call kerasae's loss functions
(`kerasae.probability`) and each family's pieces (info_vae's `mmd`,
beta_tcvae's `kl_decomposition`, vq_vae's `VectorQuantizer.quantize`) rather than writing
the formulas again, so the arms differ in plumbing only. The VAE's `KLLoss` and WAE's
`MMDLoss` are the hand-written keras.io versions the first rows were measured with.

No twin, because plain `fit` (one optimizer, one gradient step) cannot express them:
aae, wae's critic variant and factor_vae train a second network with a second optimizer
(factor_vae's total-correlation discriminator); vq_vae's EMA codebook and dead-code
restarts are updates after the optimizer step (kerasae's `after_step` hook), which a
plain model would need a custom `train_step` for. So vq_vae is compared in
`codebook_update="loss"` mode with restarts off, in both arms.
"""

import math

import keras
from keras import layers, ops

from kerasae.probability import gaussian, kernels, regularizers
from kerasae.probability.gaussian import (
    mixture_log_prob,
    posterior_log_prob,
    standard_normal_log_prob,
)
from kerasae.probability.layers import GaussianPosterior


class KLLoss(layers.Layer):
    """Plain-Keras VAE plumbing: add KL(q || N(0, I)) and pass a reparameterised draw on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed = keras.random.SeedGenerator(1)

    def call(self, inputs):
        mean, log_var = inputs
        kl = -0.5 * ops.sum(1 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)
        self.add_loss(ops.mean(kl))
        return mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed)


class MMDLoss(layers.Layer):
    """Plain-Keras WAE-MMD plumbing: add weight * MMD(z, prior draws) and pass z on."""

    def __init__(self, weight, kernel, **kwargs):
        super().__init__(**kwargs)
        self.weight, self.kernel = weight, kernel
        self.seed = keras.random.SeedGenerator(1)

    def call(self, z):
        prior = keras.random.normal(ops.shape(z), seed=self.seed)
        self.add_loss(self.weight * kernels.mmd_unbiased(z, prior, kernel=self.kernel))
        return z


def sum_bce_from_logits(x, logits):
    per_pixel = ops.binary_crossentropy(
        ops.reshape(x, (ops.shape(x)[0], -1)),
        ops.reshape(logits, (ops.shape(x)[0], -1)),
        from_logits=True,
    )
    return ops.sum(per_pixel, axis=-1)


class SparsityLoss(layers.Layer):
    """sparse_ae: add weight * sum_j KL(rho || rho_hat_j), rho_hat the batch-mean code."""

    def __init__(self, rho, weight, **kwargs):
        super().__init__(**kwargs)
        self.rho, self.weight = rho, weight

    def call(self, z):
        rho_hat = ops.mean(ops.cast(z, "float32"), axis=0)
        self.add_loss(self.weight * regularizers.sparsity_kl(self.rho, rho_hat))
        return z


class RAEL2Penalty(layers.Layer):
    """rae (l2): add beta * 0.5 ||z||^2 and weight_decay * ||decoder kernels||^2; pass z on."""

    def __init__(self, beta, weight_decay, decoder, **kwargs):
        super().__init__(**kwargs)
        self.beta, self.weight_decay = beta, weight_decay
        self.decoder = decoder  # tracked twice (here and in the graph); Keras dedups weights

    def call(self, z):
        code = ops.mean(0.5 * ops.sum(ops.square(ops.cast(z, "float32")), axis=-1))
        decay = ops.sum(
            [
                ops.sum(ops.square(ops.cast(w, "float32")))
                for w in self.decoder.trainable_weights
                if w.name == "kernel"
            ]
        )
        self.add_loss(self.beta * code + self.weight_decay * decay)
        return z


class GaussianDraw(layers.Layer):
    """[mean, log_var] -> a reparameterised draw by kerasae's own posterior; subclasses add
    their KL-like term (`penalty`) with add_loss."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.posterior = GaussianPosterior(seed=1)

    def build(self, input_shape):
        self.posterior.build(input_shape)  # no weights (a seed only): marks it built

    def call(self, inputs):
        mean, log_var = inputs
        z = self.posterior.sample(mean, log_var)
        self.add_loss(self.penalty(mean, log_var, z))
        return z

    def compute_output_shape(self, input_shape):
        return input_shape[0]


class InfoVAELoss(GaussianDraw):
    """info_vae: (1 - alpha) KL + (alpha + lambda - 1) MMD(z, prior draws)."""

    def __init__(self, twin, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.lambda_ = twin.alpha, twin.lambda_
        self.mmd = twin.mmd  # a bound method: the family's kernel and bandwidth, untracked

    def penalty(self, mean, log_var, z):
        kl = ops.mean(gaussian.gaussian_kl(mean, log_var))
        prior = self.posterior.sample(ops.zeros_like(mean), ops.zeros_like(log_var))
        return (1.0 - self.alpha) * kl + (self.alpha + self.lambda_ - 1.0) * self.mmd(z, prior)


class BetaTCLoss(GaussianDraw):
    """beta_tcvae: alpha MI + beta TC + gamma dimension-wise KL, by the family's estimator."""

    def __init__(self, twin, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.beta, self.gamma = twin.alpha, twin.beta, twin.gamma
        self.decompose = twin.kl_decomposition  # a bound method, untracked

    def penalty(self, mean, log_var, z):
        mi, tc, dwkl = (ops.mean(t) for t in self.decompose(mean, log_var, z))
        return self.alpha * mi + self.beta * tc + self.gamma * dwkl


class VampKL(GaussianDraw):
    """vamp: beta (log q(z|x) - log p(z)) with p the VampPrior: the layer holds the
    pseudo-inputs (initialised as the twin's) and runs the twin's encoder on them."""

    def __init__(self, twin, **kwargs):
        super().__init__(**kwargs)
        self.beta, self.encoder = twin.beta, twin.encoder
        self.pseudo_inputs = self.add_weight(
            shape=tuple(twin.pseudo_inputs.shape),
            name="pseudo_inputs",
            initializer=keras.initializers.Constant(twin.pseudo_inputs.numpy()),
        )

    def penalty(self, mean, log_var, z):
        means, log_vars = self.encoder(self.pseudo_inputs, training=False)
        kl = posterior_log_prob(z, mean, log_var) - mixture_log_prob(z, means, log_vars)
        return self.beta * ops.mean(kl)


class IWAELoss(layers.Layer):
    """iwae: [x, mean, log_var] -> add -L_k, the k-draw importance-weighted bound, with the
    twin's decoder_logits on the batch * k draws; returns the per-example bound."""

    def __init__(self, k, decoder_logits, **kwargs):
        super().__init__(**kwargs)
        self.k, self.decoder_logits = k, decoder_logits
        self.posterior = GaussianPosterior(seed=1)

    def build(self, input_shape):
        self.posterior.build(input_shape)

    def call(self, inputs):
        x, mean, log_var = (ops.repeat(t, self.k, axis=0) for t in inputs)  # example-major
        z = self.posterior.sample(mean, log_var)
        nll = sum_bce_from_logits(x, self.decoder_logits(z))
        kl = posterior_log_prob(z, mean, log_var) - standard_normal_log_prob(z)
        log_w = ops.reshape(-(nll + kl), (-1, self.k))
        bound = ops.logsumexp(log_w, axis=1) - math.log(self.k)
        self.add_loss(-ops.mean(bound))
        return bound

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)


class VQLoss(layers.Layer):
    """vq_vae (codebook_update="loss"): the twin's VectorQuantizer; adds its codebook +
    beta * commitment loss and passes the straight-through codes on, flattened."""

    def __init__(self, quantizer, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.quantizer, self.latent_dim = quantizer, latent_dim

    def call(self, z_e):
        q = self.quantizer.quantize(z_e)
        self.add_loss(q["loss"])
        return ops.reshape(q["z_q"], (-1, self.latent_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)


def plain_model(name, twin):
    """A functional keras.Model on `twin`'s networks, and the compile loss for it (None
    where add_loss carries the whole objective)."""
    x = keras.Input(twin.data_shape)
    if name == "vae":
        z = KLLoss()(twin.encoder(x))
        return keras.Model(x, twin.decoder_logits(z)), sum_bce_from_logits
    if name in ("info_vae", "beta_tcvae", "vamp"):
        loss_layer = {"info_vae": InfoVAELoss, "beta_tcvae": BetaTCLoss, "vamp": VampKL}[name]
        z = loss_layer(twin)(twin.encoder(x))
        return keras.Model(x, twin.decoder_logits(z)), sum_bce_from_logits
    if name == "iwae":
        mean, log_var = twin.encoder(x)
        return keras.Model(x, IWAELoss(twin.k, twin.decoder_logits)([x, mean, log_var])), None
    if name == "vq_vae":
        if twin.codebook_update != "loss" or twin.quantizer.tracks_usage:
            raise ValueError(
                "vq_vae's plain twin needs codebook_update='loss' and "
                "restart_threshold=None: EMA updates and restarts are not "
                "gradient steps, plain fit cannot express them"
            )
        z = VQLoss(twin.quantizer, twin.latent_dim)(twin.pre_quantizer(x))
        return keras.Model(x, twin.decoder(z)), "mse"
    z = twin.encoder(x)
    if name == "wae":
        z = MMDLoss(twin.reg_weight, twin.kernel)(z)
    elif name == "sparse_ae":
        z = SparsityLoss(twin.rho, twin.sparsity_weight)(z)
    elif name == "rae":
        if twin.regularizer != "l2":
            raise ValueError("rae's plain twin is the l2 regularizer (weight decay via add_loss)")
        z = RAEL2Penalty(twin.beta, twin.weight_decay, twin.decoder)(z)
    return keras.Model(x, twin.decoder(z)), "mse"
