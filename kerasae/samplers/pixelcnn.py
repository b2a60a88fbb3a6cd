"""`pixelcnn`: an autoregressive prior over a `vq_vae`'s grid of code indices, fitted after
training, as in van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation
Learning" (2017), with the masked-convolution network of van den Oord, Kalchbrenner and
Kavukcuoglu, "Pixel Recurrent Neural Networks" (2016, section 3.4 and figure 5) and van den
Oord et al., "Conditional Image Generation with PixelCNN Decoders" (2016).

p(indices) = prod_p p(index_p | indices before p in raster order). The network embeds the
indices, applies one mask-A convolution (a position sees only the positions before it),
a few residual blocks of mask-B convolutions (the position itself, i.e. the features that
already exclude its own index) and 1x1 convolutions to K logits per position; it is
trained by cross-entropy on the training set's index grids. A grid is one "colour channel",
so the masks need no channel groups. The grids are small (7x7 for 28x28 inputs, 2x2 for
8x8 digits): the 7x7 mask-A kernel reaches 3 rows up, and the stacked mask-B layers further,
so the plain PixelCNN's blind spot (the gated two-stack network's reason to be) costs
little here, and the single stack stays cheap on a CPU.

Drawing follows this module exactly (kerasae-runtime repeats it on sampler.onnx): all
randomness is U = rng.random((n, h*w)) up front; position by position the float64 softmax
of the logits is inverted at U by `searchsorted`; z is the codebook gather of the indices.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.samplers.base import (
    ARRAYS,
    LatentSampler,
    SamplerGraph,
    _count,
    register_sampler,
)
from kerasae.samplers.pixelcnn_net import build_network

WEIGHTS_FILE = "model.weights.h5"


ONNX_FILE = "sampler.onnx"


CHUNK = 1024  # grids per network call when drawing (as kerasae-runtime does)


def invert_cdf(logits, u):
    """Per row: the index where u falls in the float64 softmax's cumulative sum, i.e.
    min(searchsorted(cumsum(softmax(logits)), u, side="right"), K - 1). The softmax is
    exp(l - max(l)) / sum(exp(l - max(l))) in float64: kerasae-runtime does the same."""
    logits = np.asarray(logits, dtype=np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(e / e.sum(axis=1, keepdims=True), axis=1)
    # searchsorted(side="right") on a sorted row = how many entries are <= u
    k = np.sum(cdf <= np.asarray(u, dtype=np.float64)[:, None], axis=1)
    return np.minimum(k, logits.shape[1] - 1)


def draw_indices(logits_at, u, grid):
    """The spec's pixelcnn loop: (n, h, w) int64 indices for the uniforms u (n, h * w).
    `logits_at(indices, i, j)` gives the (n, K) logits at (i, j) of an (n, h, w) grid."""
    h, w = grid
    indices = np.zeros((len(u), h, w), dtype=np.int64)
    for p in range(h * w):
        i, j = divmod(p, w)
        indices[:, i, j] = invert_cdf(logits_at(indices, i, j), u[:, p])
    return indices


@register_sampler("pixelcnn")
class PixelCNNSampler(LatentSampler):
    """PixelCNN prior over a vq_vae's code indices (van den Oord et al. 2016, 2017)."""

    learned = True
    # sized for a CPU: 32 filters cost ~4x fewer multiply-adds than 64 (the dense 7x7
    # mask-A conv dominates); on a 7x7 grid of 512 codes a step of 128 grids took 55 ms
    # on a shared 2-core CPU (Fashion-MNIST's 60k grids x 10 epochs: ~4 minutes)
    defaults = {"filters": 32, "blocks": 3, "epochs": 10, "batch_size": 128, "learning_rate": 1e-3}
    tiny_config = {"filters": 16, "blocks": 1, "epochs": 4, "batch_size": 64}

    def __init__(self, **options):
        super().__init__(**options)
        for key in ("filters", "blocks", "epochs", "batch_size"):
            value = self.options[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (key != "blocks"):
                raise KerasaeError(
                    f"pixelcnn {key} must be a positive integer (blocks may be 0), got {value!r}"
                )
        rate = self.options["learning_rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise KerasaeError(f"pixelcnn learning_rate must be a positive number, got {rate!r}")
        self.network = self.codebook = self.grid = None
        self.history = []  # mean training cross-entropy (nats per position) per epoch
        self._logits_at = None

    @classmethod
    def check(cls, model):
        if not (
            callable(getattr(model, "encode_indices", None))
            and getattr(model, "quantizer", None) is not None
        ):
            raise KerasaeError(
                f"the pixelcnn sampler is a prior over a vq_vae's grid of code indices, and "
                f"{type(model).__name__} has no codebook; train a vq_vae, or use --sampler gmm"
            )

    # ------------------------------------------------------------------ fitting
    def fit(self, model, x_train, seed=0):
        self.check(model)
        indices = np.asarray(model.encode_indices(x_train), dtype=np.int32)
        codebook = np.asarray(model.quantizer.codebook.numpy(), dtype=np.float32)
        self._build(tuple(int(d) for d in indices.shape[1:]), codebook, seed)
        opt = self.options
        optimizer = keras.optimizers.Adam(opt["learning_rate"])
        xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        net = self.network

        @tf.function(input_signature=[tf.TensorSpec((None, *self.grid), tf.int32)])
        def step(batch):
            with tf.GradientTape() as tape:
                loss = xent(batch, net(batch, training=True))
            optimizer.apply_gradients(
                zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables)
            )
            return loss

        rng = np.random.default_rng(seed)
        size = opt["batch_size"]
        self.history = []
        for _ in range(opt["epochs"]):
            order = rng.permutation(len(indices))
            batches = [order[s : s + size] for s in range(0, len(order), size)]
            # read the losses once per epoch: a float() per step would sync every step
            losses = [step(tf.constant(indices[b])) for b in batches]
            self.history.append(
                sum(float(loss) * len(b) for loss, b in zip(losses, batches)) / len(indices)
            )
        self.n_codes, self.seed = len(indices), seed
        return self

    def _build(self, grid, codebook, seed):
        self.grid, self.codebook = grid, codebook
        self.latent_dim = int(grid[0] * grid[1] * codebook.shape[1])
        self.network = build_network(
            grid,
            len(codebook),
            self.options["filters"],
            self.options["blocks"],
            seed=int(seed or 0),
        )

        # drawing needs the K logits of one position only: the last 1x1 conv runs there
        features = keras.Model(self.network.input, self.network.get_layer("head").output)
        head = self.network.get_layer("logits")

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, *grid), tf.int32),
                tf.TensorSpec((), tf.int32),
                tf.TensorSpec((), tf.int32),
            ]
        )
        def logits_at(indices, i, j):  # one call per position, the whole batch at once
            here = features(indices, training=False)[:, i : i + 1, j : j + 1, :]
            return head(here)[:, 0, 0, :]

        self._logits_at = logits_at

    def _require_fitted(self):
        if self.network is None:
            raise KerasaeError(
                "this pixelcnn sampler is not fitted; fit it first: "
                "kerasae fit-sampler RUN --sampler pixelcnn"
            )

    # ------------------------------------------------------------------ drawing
    def sample_indices(self, n, seed=None):
        """(n, h, w) int64 code indices, drawn position by position (raster order)."""
        self._require_fitted()
        h, w = self.grid
        u = np.random.default_rng(seed).random((_count(n), h * w))  # all randomness, first

        def logits_at(indices, i, j):
            return self._logits_at(
                tf.constant(indices, tf.int32), tf.constant(i), tf.constant(j)
            ).numpy()

        # in chunks: the network computes all h*w*K logits of a grid at every position
        return np.concatenate(
            [draw_indices(logits_at, u[s : s + CHUNK], self.grid) for s in range(0, len(u), CHUNK)]
        )

    def sample_latent(self, n, seed=None):
        indices = self.sample_indices(n, seed)
        return self.codebook[indices].reshape(len(indices), -1).astype(np.float32)

    # ------------------------------------------------------------------ storage
    # sampler.json (the base class) holds the grid and the training curve; arrays.npz the
    # codebook, so the sampler draws z without the vq_vae; model.weights.h5 the network,
    # rebuilt from the options and the grid, never unpickled
    def extra_meta(self):
        self._require_fitted()
        return {
            "grid": list(self.grid),
            "num_embeddings": len(self.codebook),
            "history": [float(v) for v in self.history],
        }

    def state(self):
        return {"codebook": self.codebook}

    def save_weights(self, folder):
        self.network.save_weights(os.path.join(folder, WEIGHTS_FILE))

    def restore(self, meta, arrays, folder):
        path = os.path.join(folder, WEIGHTS_FILE)
        if "codebook" not in arrays or not os.path.isfile(path):
            raise KerasaeError(
                f"{folder} lacks the pixelcnn sampler's {ARRAYS} (codebook) or "
                f"{WEIGHTS_FILE}; fit it again: kerasae fit-sampler RUN "
                "--sampler pixelcnn"
            )
        self._build(
            tuple(meta["grid"]), np.asarray(arrays["codebook"], np.float32), meta.get("seed") or 0
        )
        self.network.load_weights(path)
        self.history = list(meta.get("history", []))

    # ------------------------------------------------------------------ export
    def export_spec(self):
        """The manifest's prior entry: raster-order inverse-CDF draws through sampler.onnx."""
        self._require_fitted()
        h, w = self.grid
        return {
            "kind": "pixelcnn",
            "dim": self.latent_dim,
            "sampler": self.name,
            "file": ONNX_FILE,
            "grid": [h, w],
            "num_embeddings": len(self.codebook),
            "source": self.describe(),
        }

    def export_graph(self):
        """sampler.onnx: int64 indices (n, h, w) -> logits (n, h, w, K) and z (n,
        latent_dim), the codebook gather inside."""
        self._require_fitted()
        h, w = self.grid
        k, d = self.codebook.shape
        codebook, network = np.asarray(self.codebook, np.float32), self.network

        def serve(indices):
            idx = tf.cast(indices, tf.int32)
            # made here, not captured: tf2onnx would turn a captured eager tensor into an input
            table = tf.constant(codebook)
            # tf.gather converts to ONNX Gather (keras.ops lookups can lower to unsupported ops)
            return {
                "logits": network(idx, training=False),
                "z": tf.reshape(tf.gather(table, idx), (-1, h * w * d)),
            }

        return SamplerGraph(
            ONNX_FILE,
            serve,
            "indices",
            (None, h, w),
            "int64",
            ("logits", "z"),
            ((None, h, w, k), (None, h * w * d)),
        )

    def describe(self):
        if self.network is None:
            return "pixelcnn sampler (not fitted)"
        h, w = self.grid
        return (
            f"pixelcnn sampler (autoregressive prior over a {h}x{w} grid of "
            f"{len(self.codebook)} codes, fitted to {self.n_codes} training grids)"
        )
