"""`vq_vae`: the vector-quantised autoencoder of van den Oord, Vinyals and Kavukcuoglu,
"Neural Discrete Representation Learning" (NeurIPS 2017).

A conv encoder maps x to a grid z_e(x) of h x w vectors of `embedding_dim`; each is
replaced by its nearest entry of a codebook of `num_embeddings` (`kerasae.nets.
VectorQuantizer`), and a transposed-conv decoder maps the grid of codes z_q back to x.
The objective (the paper's eq. 3) is

    rec(x, dec(z_q)) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2

with the straight-through gradient dz_q/dz_e = I carrying the reconstruction's gradient to
the encoder. With `codebook_update="ema"` the codebook term is replaced by exponential
moving averages of the vectors assigned to each code (the paper's Appendix A.1). The
codebook starts as k-means centroids of the first batch's encoder outputs (`initialize`),
and codes whose usage decays below `restart_threshold` move onto encoder outputs of the
batch (`after_step`): both keep the codebook in use.

The code is the flattened grid of codes: latent_dim = h * w * embedding_dim, so
embedding_dim is derived from latent_dim (like `kerasae.nets`'s spatial code) and
`encode(x)` has shape (n, latent_dim); `encode_indices(x)` gives the (n, h, w) grid of
code indices. With `architecture="mlp"` the encoder is an MLP with a Dense(latent_dim)
head whose latent_dim values are each quantised, as pythae 0.1.2 shapes an MLP encoder's
2-D embedding for its quantizer ((n, d) -> (n, 1, d, 1)): a 1 x latent_dim grid of 1-d
codes (16 codes of a 512-entry codebook at latent_dim 16), decoded by the mirrored MLP.
The exported encoder has both outputs, `z` (float32) and `indices` (int32).
It has no prior of its own: it generates through a prior fitted over the index grid after
training, the paper's PixelCNN (`kerasae fit-sampler RUN --sampler pixelcnn`,
`kerasae.samplers.pixelcnn`), whose sampled indices the decoder turns into images.
"""

import keras
import tensorflow as tf

import kerasae.nets as nets
from kerasae.errors import KerasaeError
from kerasae.models.networks import NetworkAutoencoder
from kerasae.models.registry import register_model

CODEBOOK_UPDATES = ("loss", "ema")
ARCHITECTURES = ("conv", "mlp")
#: latent_dim (= codes, 1-d each) of the mlp variant when not given: pythae's 16 codes
DEFAULT_MLP_CODES = 16
#: embedding_dim when latent_dim is not given: the paper's choice for small images
DEFAULT_EMBEDDING_DIM = 64


class NearestCode(keras.layers.Layer):
    """z_e grid -> int32 grid of the nearest code's index, by the model's shared quantizer
    (a layer of its own so that the functional encoder can output the indices)."""

    def __init__(self, quantizer, **kwargs):
        super().__init__(**kwargs)
        self.quantizer = quantizer

    def call(self, z_e):
        return self.quantizer.indices(z_e)

    def compute_output_spec(self, z_e):
        return keras.KerasTensor(z_e.shape[:-1], dtype="int32")


class CodeLookup(keras.layers.Layer):
    """[z_e, indices] -> the codes of `indices`, exactly, with the straight-through gradient
    to z_e: z_e - sg[z_e] is exactly 0, whereas the usual z_e + sg[z_q - z_e] is z_q only
    up to rounding, and decode(encode(x)) should see the codebook's own vectors."""

    def __init__(self, quantizer, **kwargs):
        super().__init__(**kwargs)
        self.quantizer = quantizer

    def call(self, inputs):
        z_e, indices = inputs
        z_q = tf.cast(self.quantizer.lookup(indices), z_e.dtype)
        return z_q + (z_e - tf.stop_gradient(z_e))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)


@register_model("vq_vae")
class VQVAE(NetworkAutoencoder):
    """VQ-VAE (van den Oord et al. 2017): an encoder's code grid snapped to a learned codebook.

    k-means init, codebook loss or EMA updates, dead-code restarts."""

    loss_names = ("loss", "reconstruction", "codebook", "commitment")

    def prior_spec(self):
        """No prior for the export manifest: the codes are discrete, and a Gaussian over
        them would generate nothing meaningful (a prior over indices comes later)."""
        return None

    metric_names = ("perplexity", "usage")
    aux_names = ("z_e", "indices")
    tiny_config = {"latent_dim": 16, "filters": (4, 8), "num_embeddings": 8}
    # Fashion-MNIST pilot (20k images, 3 epochs, 7x7x64 codes): test MSE 0.0062 at 2e-3 vs
    # 0.0074 at 1e-3 (3e-3: 0.0061); the codebook loss beat EMA (0.0067 at decay 0.99 or
    # 0.95); without restarts the codebook collapsed to 10% of its codes (MSE 0.0085)
    default_learning_rate = 2e-3

    fixed_params = ("encoder", "decoder")  # the quantizer sits inside the encoder

    def __init__(
        self,
        *,
        latent_dim=None,
        architecture="conv",
        num_embeddings=512,
        beta=0.25,
        codebook_update="loss",
        decay=0.99,
        restart_threshold=1.0,
        kmeans_init=True,
        **kwargs,
    ):
        """`latent_dim` = h * w * embedding_dim, where h x w is the code grid (the input
        halved once per entry of `filters`: 7x7 for 28x28, 2x2 for 8x8); None means
        embedding_dim 64. `architecture`: "conv" (the paper's grid of conv features) or
        "mlp" (`hidden_units` Dense layers; each of the latent_dim values is a code of
        its own, 1-d, as in pythae: None means 16). `codebook_update`: "loss" (the
        codebook loss, by Adam: the paper's main method) or "ema" (moving averages, decay `decay`).
        `restart_threshold`: codes whose EMA usage (vectors per batch) falls below it
        restart on a batch vector, in both modes (None: never). 1.0 rather than the
        quantizer's 1e-3, which an unused code's usage reaches only 700-1000 steps after
        its last use at decay 0.99.
        `kmeans_init`: the codebook starts as k-means centroids of the first batch's
        encoder outputs."""
        if architecture not in ARCHITECTURES:
            raise KerasaeError(
                f"vq_vae quantises a grid of conv features or each value of an MLP's code: "
                f"architecture must be 'conv' or 'mlp', got {architecture!r}"
            )
        input_shape = tuple(self.arguments["input_shape"])  # the grid sets latent_dim
        if architecture == "conv":
            nets.check_architecture("conv", input_shape)
            filters = nets.resolve_filters(self.arguments["filters"], input_shape, base=64)
            grid = nets.code_grid(input_shape, filters)
            latent_dim, embedding_dim = _code_size(latent_dim, grid, filters)
        else:  # pythae's shape: (n, latent_dim) -> a 1 x latent_dim grid of scalars
            latent_dim = DEFAULT_MLP_CODES if latent_dim is None else latent_dim
            filters, embedding_dim = self.arguments["filters"], 1
            grid = (1, latent_dim if isinstance(latent_dim, int) else 1)
        _check_settings(num_embeddings, beta, codebook_update, decay, restart_threshold)
        super().__init__(latent_dim=latent_dim, architecture=architecture, **kwargs)
        self.filters = filters
        self.record_config(filters=filters)
        self.grid = grid
        self.embedding_dim = embedding_dim
        self.num_embeddings = int(num_embeddings)
        self.codebook_update = codebook_update
        self.kmeans_init = bool(kmeans_init)
        if codebook_update == "ema":  # no codebook loss to log: the codebook is not trained
            self.loss_names = ("loss", "reconstruction", "commitment")
            self.make_trackers()
        x = keras.Input(shape=self.data_shape, name="x")
        if architecture == "conv":
            body = self.network_options(hidden_units=())
            h = nets.features(x, "conv", flatten=False, **body)
            z_e = keras.layers.Conv2D(embedding_dim, 1, name="z_e")(h)
            code = "spatial"
        else:
            body = self.network_options()
            h = nets.features(x, "mlp", **body)
            z_e = keras.layers.Dense(self.latent_dim, name="z_e")(h)
            z_e = keras.layers.Reshape((*grid, 1), name="z_e_grid")(z_e)
            code = "dense"
        # x -> z_e: what training quantises; shares its layers with the encoder
        self.pre_quantizer = keras.Model(x, z_e, name="pre_quantizer")
        self.quantizer = nets.VectorQuantizer(
            self.num_embeddings,
            embedding_dim,
            beta=beta,
            ema=codebook_update == "ema",
            decay=decay,
            restart_threshold=restart_threshold,
            name="quantizer",
        )
        self.quantizer.build((None, *grid, embedding_dim))  # its weights named quantizer/...
        indices = NearestCode(self.quantizer, name="indices")(z_e)
        codes = CodeLookup(self.quantizer, name="codes")([z_e, indices])
        z = keras.layers.Flatten(name="z")(codes)
        encoder = keras.Model(x, [z, indices], name="encoder")
        # the mirror: for conv the spatial-code decoder (the code grid, a conv, transposed
        # convs up), for mlp the Dense layers reversed
        decoder = nets.build_decoder(
            self.latent_dim, self.data_shape, architecture, code=code, **body
        )
        self.set_networks(encoder, decoder)

    # ------------------------------------------------------------------ training
    def initialize(self, x_batch):
        if self.kmeans_init:
            self.quantizer.kmeans_init(self.pre_quantizer(x_batch, training=False))

    def compute_losses(self, x, training=False):
        z_e = self.pre_quantizer(x, training=training)
        q = self.quantizer.quantize(z_e)
        x_hat = self.decoder(keras.ops.reshape(q["z_q"], (-1, self.latent_dim)), training=training)
        rec = self.reconstruction_loss(x, x_hat)
        out = {
            "loss": rec + q["loss"],
            "reconstruction": rec,
            "commitment": q["commitment_loss"],
            "perplexity": q["perplexity"],
            "usage": q["usage"],
            "z_e": z_e,
            "indices": q["indices"],
        }
        if self.codebook_update == "loss":
            out["codebook"] = q["codebook_loss"]
        return out

    def after_step(self, x, outputs):
        # EMA codebook and/or usage tracking with dead-code restarts (a no-op when the
        # quantizer does neither)
        self.quantizer.ema_update(outputs["z_e"], outputs["indices"])

    # ------------------------------------------------------------------ inference
    def call(self, x, training=False):
        return self.decoder(self.encoder(x, training=training)[0], training=training)

    def encode(self, x, batch_size=256):
        """The quantised codes, flattened: (n, latent_dim), what the decoder takes."""
        return self._batched(lambda b: self.encoder(b, training=False)[0], x, batch_size)

    def encode_indices(self, x, batch_size=256):
        """The code indices: int32, (n, h, w) ((n, 1, latent_dim) for the mlp variant)."""
        return self._batched(lambda b: self.encoder(b, training=False)[1], x, batch_size)

    def codes_of(self, indices):
        """The flat codes (what `decode` takes) of an (n, h, w) grid of indices."""
        codes = self.quantizer.lookup(tf.constant(indices, tf.int32))
        return keras.ops.convert_to_numpy(keras.ops.reshape(codes, (-1, self.latent_dim)))


def _code_size(latent_dim, grid, filters):
    """(latent_dim, embedding_dim) on an h x w grid; one-line error when they cannot agree."""
    cells = grid[0] * grid[1]
    if latent_dim is None:
        return cells * DEFAULT_EMBEDDING_DIM, DEFAULT_EMBEDDING_DIM
    if (
        isinstance(latent_dim, bool)
        or not isinstance(latent_dim, int)
        or latent_dim <= 0
        or latent_dim % cells
    ):
        raise KerasaeError(
            f"vq_vae codes a {grid[0]}x{grid[1]} grid (the input halved {len(filters)} times), "
            f"so latent_dim = {cells} * embedding_dim: use a multiple of {cells}, e.g. "
            f"{cells * DEFAULT_EMBEDDING_DIM} for {DEFAULT_EMBEDDING_DIM}-dim codes, "
            f"got {latent_dim!r}"
        )
    return latent_dim, latent_dim // cells


def _check_settings(num_embeddings, beta, codebook_update, decay, restart_threshold):
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if (
        not isinstance(num_embeddings, int)
        or isinstance(num_embeddings, bool)
        or num_embeddings < 2
    ):
        raise KerasaeError(f"num_embeddings must be an integer >= 2, got {num_embeddings!r}")
    if codebook_update not in CODEBOOK_UPDATES:
        raise KerasaeError(
            f"codebook_update must be one of {', '.join(CODEBOOK_UPDATES)}, "
            f"got {codebook_update!r}"
        )
    if not number(beta) or beta < 0:
        raise KerasaeError(f"beta must be a non-negative number, got {beta!r}")
    if not number(decay) or not 0 < decay < 1:
        raise KerasaeError(f"decay must be in (0, 1), got {decay!r}")
    if restart_threshold is not None and (not number(restart_threshold) or restart_threshold < 0):
        raise KerasaeError(
            f"restart_threshold must be a non-negative number or None, got {restart_threshold!r}"
        )
