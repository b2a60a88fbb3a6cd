"""`rae`: regularized autoencoders (Ghosh, Sajjadi, Vergari, Black and Schoelkopf, "From
Variational to Deterministic Autoencoders", ICLR 2020).

A deterministic autoencoder whose code is kept small and whose decoder is kept smooth,
in place of the VAE's noise and KL term (their eq. 11):

    loss = reconstruction + beta * 0.5 ||z||^2 + lambda * L_REG

with L_REG, by `regularizer`:
  "l2": ||theta_dec||^2, weight decay of the decoder's kernels, `weight_decay` = lambda
        (RAE-L2; biases only shift the output, they do not change the decoder's smoothness);
  "gp": ||dD(z)/dz||_F^2, the decoder's squared Jacobian norm at the codes, `gp_weight` =
        lambda (RAE-GP): in training an unbiased one-projection estimate ||J u||^2,
        u ~ N(0, I) (one forward-mode pass, whatever latent_dim), exact in evaluation.
The reconstruction loss is kerasae's per-pixel mean (mse or bce) and the Jacobian norm is
averaged per output pixel to match; 0.5 ||z||^2 is summed over latent dimensions. Logged:
`loss`, `reconstruction`, `code_penalty` (0.5 ||z||^2) and `decoder_penalty` (L_REG).

Sampling by ex-post density estimation (their section 4): the model has no prior, so at
the end of `fit` it fits a full-covariance Gaussian to the codes of its training data
(streamed, any size) and `sample()` decodes draws from it. The Gaussian's mean and
Cholesky factor are weights, so they are saved, loaded and exported with the model (the
export's manifest names it as the prior). This Gaussian is the one ex-post sampler until
the latent samplers (GMM, two-stage VAE: a later issue) land. Before any fit, the model
is not generative yet and `sample()` raises a KerasaeError saying so.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import kerasae.distribute as distribute
from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.models.networks import NetworkAutoencoder, resolve_architecture
from kerasae.models.registry import register_model
from kerasae.probability import regularizers
from kerasae.probability.gaussian import gaussian_scale_tril

REGULARIZERS = ("l2", "gp")


@register_model("rae")
class RAE(NetworkAutoencoder):
    """Regularized AE (Ghosh et al. 2020): L2 or Jacobian-penalty decoder, ex-post Gaussian."""

    loss_names = ("loss", "reconstruction", "code_penalty", "decoder_penalty")
    #: the family samples (once fitted: an instance is generative when its Gaussian is)
    generative = True
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}

    def __init__(
        self,
        *,
        architecture="auto",
        regularizer="l2",
        beta=1e-4,
        weight_decay=1e-5,
        gp_weight=0.01,
        **kwargs,
    ):
        """`beta` weighs 0.5 ||z||^2 (summed over latents) against the per-pixel mean
        reconstruction loss; `weight_decay` is lambda of "l2", `gp_weight` lambda of "gp"
        (the other is unused). `architecture`: "auto" is conv for images, mlp otherwise.

        Defaults from a Fashion-MNIST pilot (20k images, 5 epochs, mlp, latent 16; test MSE
        and the KL between the class histograms of 2000 samples and of the data, as in
        `kerasae evaluate --coverage`): l2 0.0168 / 0.027, gp 0.0150 / 0.024, against
        0.0151 / 0.063 unregularized; beta 1e-3 or 1e-2, weight_decay 1e-5 with beta 1e-3
        and gp_weight 0.1 or 1 all cost reconstruction (0.018-0.025)."""
        super().__init__(architecture=architecture, **kwargs)
        if regularizer not in REGULARIZERS:
            raise KerasaeError(
                f"regularizer must be one of {', '.join(REGULARIZERS)}, got {regularizer!r}"
            )
        for key, value in (
            ("beta", beta),
            ("weight_decay", weight_decay),
            ("gp_weight", gp_weight),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise KerasaeError(f"{key} must be a number >= 0, got {value!r}")
        self.architecture = resolve_architecture(self.architecture, self.data_shape)
        self.resolve_networks(base=64)  # filters None: by the image size, conv_ae's widths
        self._check_undercomplete()
        self.regularizer = regularizer
        self.beta, self.weight_decay, self.gp_weight = (
            float(beta),
            float(weight_decay),
            float(gp_weight),
        )
        self.set_networks(self.build_encoder(), self.build_decoder())
        self.seed_generator = keras.random.SeedGenerator(0)  # the gp's projections
        # the ex-post Gaussian N(mean, L L^T); count = 0 until it is fitted
        d = self.latent_dim
        self.latent_mean = self.add_weight(
            shape=(d,), initializer="zeros", trainable=False, name="latent_mean"
        )
        self.latent_scale_tril = self.add_weight(
            shape=(d, d), initializer="identity", trainable=False, name="latent_scale_tril"
        )
        self.latent_count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="latent_count"
        )
        self.generative = False  # until the Gaussian is fitted (`_sync_generative`)

    # ------------------------------------------------------------------ training
    def compute_losses(self, x, training=False):
        z = self.encoder(x, training=training)
        rec = self.reconstruction_loss(x, self.decoder(z, training=training))
        code = ops.mean(0.5 * ops.sum(ops.square(ops.cast(z, "float32")), axis=-1))
        if self.regularizer == "gp":
            # training: one random projection per example, unbiased and ~17x cheaper than
            # the exact norm at 16 latents; evaluation logs the exact value
            penalty = regularizers.jacobian_penalty(
                lambda codes: self.decoder(codes, training=training),
                z,
                projections=1 if training else None,
                seed=self.seed_generator,
            )
            weight = self.gp_weight
        else:
            penalty = ops.sum(
                [
                    ops.sum(ops.square(ops.cast(w, "float32")))
                    for w in self.decoder.trainable_weights
                    if w.name == "kernel"
                ]
            )
            weight = self.weight_decay
        return {
            "loss": rec + self.beta * code + weight * penalty,
            "reconstruction": rec,
            "code_penalty": code,
            "decoder_penalty": penalty,
        }

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        **kwargs,
    ):
        """Keras `fit`, then the ex-post Gaussian on the training data's codes."""
        history = super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            **kwargs,
        )
        data = self._inputs(x)
        if not isinstance(data, (tf.data.Dataset, np.ndarray, tf.Tensor, list)):
            warnings.warn(
                f"rae: the latent Gaussian is fitted on an array or a "
                f"tf.data.Dataset, not a {type(data).__name__} (a generator is "
                "used up by training); call fit_latent_gaussian(data) to sample",
                stacklevel=2,
            )
            return history
        if validation_split and not isinstance(data, tf.data.Dataset):
            data = data[: int(len(data) * (1.0 - validation_split))]  # Keras's training part
        self.fit_latent_gaussian(data, batch_size=batch_size, steps=kwargs.get("steps_per_epoch"))
        return history

    def fit_latent_gaussian(self, data, batch_size=None, steps=None):
        """Fit N(mean, cov) to the codes of `data` (an array or a tf.data.Dataset, streamed
        batch by batch; `steps` batches of an endless one) and store it in the weights."""
        count, mean, m2 = 0, np.zeros(self.latent_dim), np.zeros((self.latent_dim,) * 2)
        for z in self._codes(data, batch_size or 256, steps):
            # Chan et al.'s pairwise merge of (count, mean, centred sum of squares), float64
            n, batch_mean = len(z), z.mean(axis=0)
            centred = z - batch_mean
            delta = batch_mean - mean
            total = count + n
            m2 += centred.T @ centred + np.outer(delta, delta) * count * n / total
            mean += delta * n / total
            count = total
        if distribute.is_multiworker():  # every worker's codes, not only this one's shard
            count, sums, squares = distribute.across_workers(
                [count, mean * count, m2 + np.outer(mean, mean) * count]
            )
            count = float(count)
            mean = sums / max(count, 1.0)
            m2 = squares - np.outer(mean, mean) * count
        if count < 2:
            raise KerasaeError(
                f"the latent Gaussian needs at least 2 training examples, got {count}"
            )
        tril = gaussian_scale_tril(m2 / (count - 1))
        self.latent_mean.assign(mean.astype("float32"))
        self.latent_scale_tril.assign(tril.astype("float32"))
        self.latent_count.assign(float(count))
        self._sync_generative()

    def _codes(self, data, batch_size, steps):
        if isinstance(data, tf.data.Dataset):
            if steps is not None or data.cardinality() == tf.data.INFINITE_CARDINALITY:
                if steps is None:
                    raise KerasaeError(
                        "an endless dataset needs steps_per_epoch to fit the latent Gaussian"
                    )
                data = data.take(int(steps))
            for batch in distribute.local_batches(data):  # a worker reads its own shard
                yield np.asarray(self.encoder(self._inputs(batch), training=False), "float64")
        else:
            yield self.encode(np.asarray(data, dtype="float32"), batch_size).astype("float64")

    # ------------------------------------------------------------------ sampling
    def _sync_generative(self):
        self.generative = float(self.latent_count.numpy()) > 0

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self._sync_generative()  # a loaded (or checkpointed) model keeps its Gaussian

    @property
    def prior_spec(self):
        """What the export's manifest calls the prior: the fitted Gaussian (None before the
        fit, so that an export then fits its own to the training codes, as for any AE)."""
        if not self.generative:
            return None
        return lambda: {
            "kind": "gaussian",
            "dim": self.latent_dim,
            "mean": self.latent_mean.numpy().astype("float64").tolist(),
            "scale_tril": self.latent_scale_tril.numpy().astype("float64").tolist(),
            "n_codes": int(self.latent_count.numpy()),
            "source": "the model's ex-post Gaussian, fitted to its training codes at the end "
            "of fit (Ghosh et al. 2020)",
        }

    def sample_latent(self, n, seed=None):
        """`n` draws from the Gaussian fitted to the training codes: shape (n, latent_dim)."""
        if not self.generative:
            raise NotGenerativeError(
                "rae samples from a Gaussian fitted to its training codes at the end of "
                "fit(), and this model has not been fitted yet: call fit(x) (or "
                "fit_latent_gaussian(x) on training data) first"
            )
        if int(n) <= 0:
            raise KerasaeError(f"the number of samples must be positive, got {n}")
        eps = np.random.default_rng(seed).standard_normal((int(n), self.latent_dim))
        z = self.latent_mean.numpy() + eps @ self.latent_scale_tril.numpy().T
        return z.astype("float32")

    def sample(self, n, seed=None):
        """Decode `n` draws from the Gaussian fitted to the training codes."""
        return self.decode(self.sample_latent(n, seed=seed))
