"""`VectorQuantizer`: the VQ bottleneck of van den Oord, Vinyals and Kavukcuoglu, "Neural
Discrete Representation Learning" (NeurIPS 2017).

Each vector along the last axis of the encoder output z_e (a (batch, D) code or a
(batch, h, w, D) grid) is replaced by its nearest codebook entry e_k (squared Euclidean
distance); gradients pass straight through, z_e + sg[z_q - z_e]. The codebook learns either
from the codebook loss ||sg[z_e] - e||^2 (the paper's eq. 3) or, with `ema=True`, by
exponential moving averages of the vectors assigned to each code (the paper's Appendix A.1,
as in Razavi et al. 2019, VQ-VAE-2, with Laplace smoothing of the cluster sizes). Both keep
the commitment loss ||z_e - sg[e]||^2, weighted by `beta`. Losses are means over elements,
like the reconstruction loss (and DeepMind's Sonnet implementation).

Two fixes for unused codes: `kmeans_init` (a data-dependent codebook from a first batch)
and, in `ema_update`, restarting codes whose usage decayed below `restart_threshold` onto
random encoder outputs of the batch (Dhariwal et al. 2020, Jukebox; Zeghidour et al. 2021,
SoundStream).

Written with tf ops on purpose: `tf.argmin` exports to ONNX as ArgMin, while
keras.ops.argmin lowers to a Bitcast that tf2onnx cannot convert; codes come from
`tf.gather` (ONNX Gather).
"""

import keras
import numpy as np
import tensorflow as tf

from kerasae.nets.kmeans import kmeans_pp, nearest, sum_over_replicas


@keras.saving.register_keras_serializable(package="kerasae")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-neighbour quantisation of the last axis against a learned codebook.

    `call(z_e)` gives the straight-through quantized tensor (what goes into an encoder
    network); `quantize(z_e)` also gives the indices, losses and usage diagnostics a model's
    `compute_losses` needs; `ema_update` and `kmeans_init` are for the model's `after_step`
    and `initialize` hooks.
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        beta=0.25,
        ema=False,
        decay=0.99,
        epsilon=1e-5,
        restart_threshold=1e-3,
        embeddings_initializer=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.beta = float(beta)
        self.ema = bool(ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.restart_threshold = None if restart_threshold is None else float(restart_threshold)
        # uniform(-1/K, 1/K), the usual choice of VQ-VAE ports: small codes near the
        # origin, where a freshly initialised encoder's outputs are
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
            or keras.initializers.RandomUniform(
                -1.0 / self.num_embeddings, 1.0 / self.num_embeddings, seed=seed
            )
        )
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)
        # Keras wraps each layer's `quantize` (its int8/float8 weight quantisation) per
        # instance; here quantize(z_e) is the VQ step, so the plain method is restored
        # (Keras's own calls still reach Keras's behaviour: see `quantize`)
        vars(self).pop("quantize", None)

    @property
    def tracks_usage(self):
        """True when the layer keeps an EMA of code usage (EMA mode, or restarts on)."""
        return self.ema or self.restart_threshold is not None

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] != self.embedding_dim:
            raise ValueError(
                f"VectorQuantizer(embedding_dim={self.embedding_dim}) got inputs "
                f"whose last axis is {input_shape[-1]}"
            )
        k, d = self.num_embeddings, self.embedding_dim
        # only_first_replica: under tf.distribute the EMA/restart assigns run in replica
        # context on all-reduced statistics, so every replica's value is the same
        self.codebook = self.add_weight(
            shape=(k, d),
            initializer=self.embeddings_initializer,
            trainable=not self.ema,
            name="codebook",
            aggregation="only_first_replica",
        )
        if self.tracks_usage:  # starts as one vector per code, so codebook == sum / size
            self.cluster_size = self.add_weight(
                shape=(k,),
                initializer="ones",
                trainable=False,
                name="ema_cluster_size",
                aggregation="only_first_replica",
            )
        if self.ema:
            self.ema_sum = self.add_weight(
                shape=(k, d),
                initializer=lambda shape, dtype: tf.identity(self.codebook.value),
                trainable=False,
                name="ema_embedding_sum",
                aggregation="only_first_replica",
            )
        self.built = True

    def _ensure_built(self):
        if not self.built:
            self.build()

    # ------------------------------------------------------------------ lookup
    def distances(self, z_e):
        """Squared Euclidean distances to every code, shape (..., num_embeddings), float32:
        ||z||^2 - 2 z.e + ||e||^2 (one matmul instead of a (..., K, D) difference)."""
        self._ensure_built()
        z = tf.cast(z_e, tf.float32)
        e = tf.cast(self.codebook, tf.float32)
        if self.embedding_dim == 1:
            # scalar codes (architecture="mlp"): one subtraction per code. The matmul form
            # would be a BatchMatMulV2 with an inner dimension of 1, which aborts the
            # process on TensorFlow 2.21's CPU kernels ("free(): invalid pointer")
            return tf.square(z - tf.reshape(e, [-1]))
        return (
            tf.reduce_sum(tf.square(z), axis=-1, keepdims=True)
            - 2.0 * tf.matmul(z, e, transpose_b=True)
            + tf.reduce_sum(tf.square(e), axis=-1)
        )

    def indices(self, z_e):
        """The nearest code of each vector: int32 with z_e's leading shape."""
        return tf.argmin(self.distances(z_e), axis=-1, output_type=tf.int32)

    def lookup(self, indices):
        """The codes of `indices` (any shape): float32, shape (*indices.shape, D)."""
        self._ensure_built()
        return tf.gather(tf.cast(self.codebook, tf.float32), tf.cast(indices, tf.int32))

    def call(self, z_e, training=False):
        z_q = tf.cast(self.lookup(self.indices(z_e)), z_e.dtype)
        return z_e + tf.stop_gradient(z_q - z_e)  # straight-through: dz_q/dz_e = identity

    def compute_output_shape(self, input_shape):
        return input_shape

    # ------------------------------------------------------------------ training
    def quantize(self, z_e=None, type_check=True, config=None, mode=None):
        """A dict: `z_q` (straight-through), `indices`, `codebook_loss` (0 with `ema`),
        `commitment_loss`, `loss` (= codebook_loss + beta * commitment_loss),
        `perplexity` (exp of the entropy of the batch's code usage) and `usage` (the
        fraction of codes used in the batch); all scalars are float32."""
        if z_e is None or isinstance(z_e, str):  # keras.Model.quantize("int8") asks every
            # layer; Keras's answer for a layer it cannot quantize makes it skip this one
            return keras.layers.Layer.quantize(self, z_e or mode, type_check, config)
        z = tf.cast(z_e, tf.float32)
        idx = self.indices(z)
        e = self.lookup(idx)
        commitment = tf.reduce_mean(tf.square(z - tf.stop_gradient(e)))
        codebook = (
            tf.zeros((), tf.float32)
            if self.ema
            else tf.reduce_mean(tf.square(tf.stop_gradient(z) - e))
        )
        counts = self._counts(idx)
        p = counts / tf.maximum(tf.reduce_sum(counts), 1.0)
        entropy = -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(p), p))
        return {
            "z_q": tf.cast(z + tf.stop_gradient(e - z), z_e.dtype),
            "indices": idx,
            "codebook_loss": codebook,
            "commitment_loss": commitment,
            "loss": codebook + self.beta * commitment,
            "perplexity": tf.exp(entropy),
            "usage": tf.reduce_mean(tf.cast(counts > 0, tf.float32)),
        }

    def _counts(self, indices):
        """Vectors per code, float32 (K,); a segment sum, not tf.math.bincount, which XLA
        cannot compile (Keras may jit the train step)."""
        idx = tf.reshape(indices, [-1])
        return tf.math.unsorted_segment_sum(
            tf.ones_like(idx, tf.float32), idx, self.num_embeddings
        )

    def ema_update(self, z_e, indices=None):
        """One EMA step of the cluster sizes N and sums m (ema=True: codebook = m / N with
        Laplace smoothing), then the dead-code restart; returns the number of codes
        restarted. Variable assigns only, so it runs inside a compiled train step (the
        model's `after_step`). With ema=False it only tracks usage for the restarts."""
        self._ensure_built()
        if not self.tracks_usage:
            return tf.zeros((), tf.int32)
        z = tf.reshape(tf.stop_gradient(tf.cast(z_e, tf.float32)), [-1, self.embedding_dim])
        idx = self.indices(z) if indices is None else tf.reshape(indices, [-1])
        counts = self._counts(idx)
        sums = tf.math.unsorted_segment_sum(z, idx, self.num_embeddings)
        counts, sums = sum_over_replicas(counts, sums)
        size = self.decay * self.cluster_size + (1.0 - self.decay) * counts
        self.cluster_size.assign(size)
        if self.ema:
            ema_sum = self.decay * self.ema_sum + (1.0 - self.decay) * sums
            self.ema_sum.assign(ema_sum)
            total = tf.reduce_sum(size)
            # Laplace smoothing: no code's size is ever zero, so m / N stays finite
            smoothed = (size + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
            self.codebook.assign(ema_sum / smoothed[:, None])
        if self.restart_threshold is None:
            return tf.zeros((), tf.int32)
        return self._restart(z, size)

    def _restart(self, z, size):
        """Codes used less than `restart_threshold` (EMA vectors per batch) move onto random
        vectors of the batch, and count as used once, so they are not restarted again at
        once and (EMA) codebook == ema_sum / cluster_size holds for them."""
        dead = size < self.restart_threshold
        picks = keras.random.randint(
            (self.num_embeddings,), 0, tf.shape(z)[0], seed=self._seed_generator
        )
        fresh = tf.gather(z, picks)
        self.codebook.assign(tf.where(dead[:, None], fresh, self.codebook))
        self.cluster_size.assign(tf.where(dead, tf.ones_like(size), size))
        if self.ema:
            self.ema_sum.assign(tf.where(dead[:, None], fresh, self.ema_sum))
        return tf.reduce_sum(tf.cast(dead, tf.int32))

    # ------------------------------------------------------------------ init
    def kmeans_init(self, z_e, iterations=10, seed=0, init="kmeans++"):
        """Set the codebook to k-means centroids of a batch of encoder outputs (eager;
        the model's `initialize` hook). `init`: "kmeans++" (Arthur and Vassilvitskii 2007)
        or "random" seeding, then `iterations` Lloyd steps. With fewer vectors than codes
        the vectors are resampled with replacement plus small noise. With `ema` the EMA
        statistics become the final clusters' sizes and sums; returns the final mean
        squared quantisation error."""
        if init not in ("kmeans++", "random"):
            raise ValueError(f"init must be 'kmeans++' or 'random', got {init!r}")
        self._ensure_built()
        rng = np.random.default_rng(seed)
        k = self.num_embeddings
        z = np.asarray(z_e, dtype=np.float64).reshape(-1, self.embedding_dim)
        if len(z) < k:  # noise keeps the duplicates apart, so every code gets a cluster
            scale = 1e-2 * (z.std() or 1.0)
            z = z[rng.integers(0, len(z), k)] + rng.normal(0.0, scale, (k, z.shape[1]))
        centroids = (
            kmeans_pp(z, k, rng) if init == "kmeans++" else z[rng.choice(len(z), k, replace=False)]
        )
        for _ in range(int(iterations)):
            assign = nearest(z, centroids)
            counts = np.bincount(assign, minlength=k)
            sums = np.zeros_like(centroids)
            np.add.at(sums, assign, z)
            empty = counts == 0  # an empty cluster restarts on a random vector
            centroids = np.where(
                empty[:, None],
                z[rng.integers(0, len(z), k)],
                sums / np.maximum(counts, 1)[:, None],
            )
        assign = nearest(z, centroids)
        self.codebook.assign(centroids.astype("float32"))
        if self.tracks_usage:
            # a code no vector chose still counts as seen once: m / N stays its centroid
            counts = np.maximum(np.bincount(assign, minlength=k), 1).astype("float32")
            self.cluster_size.assign(counts)
            if self.ema:
                self.ema_sum.assign(centroids.astype("float32") * counts[:, None])
        return float(np.mean(np.square(z - centroids[assign])))

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "beta": self.beta,
            "ema": self.ema,
            "decay": self.decay,
            "epsilon": self.epsilon,
            "restart_threshold": self.restart_threshold,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            "seed": self.seed,
        }
