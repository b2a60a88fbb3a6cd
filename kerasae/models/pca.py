"""`pca`: principal component analysis as a linear autoencoder, the baseline of every comparison.

Baldi and Hornik (1989) showed that a linear autoencoder trained on squared error spans
the principal subspace; here `fit` skips gradient descent and computes the exact principal
components (scikit-learn's SVD), then writes them into a Dense encoder/decoder pair so the
model shares the contract (encode, reconstruct, score, save, export) with the others.
Training data that would not fit in memory (a stream larger than `EXACT_BYTES`) is fitted
batch by batch by incremental PCA (Ross et al., "Incremental Learning for Robust Visual
Tracking", IJCV 2008; scikit-learn's IncrementalPCA) in memory that does not grow with it.
"""

import keras
import numpy as np
from keras import layers
from sklearn.decomposition import PCA as SkPCA
from sklearn.decomposition import IncrementalPCA

from kerasae.models.base import Autoencoder
from kerasae.models.registry import register_model

#: a stream up to this many float32 bytes is collected for the exact SVD; a larger one is
#: fitted incrementally, in chunks of `CHUNK_ROWS` examples
EXACT_BYTES = 1 << 29
CHUNK_ROWS = 4096


def _as_array(data, inputs):
    """Collect a numpy array of inputs from an array or a (batched) tf.data.Dataset."""
    if hasattr(data, "as_numpy_iterator"):
        parts = [np.asarray(inputs(batch)) for batch in data.as_numpy_iterator()]
        return np.concatenate(parts)
    return np.asarray(inputs(data), dtype="float32")


def fit_components(data, inputs, n_components, whiten, steps=None):
    """A fitted scikit-learn PCA (exact) or IncrementalPCA (a stream over EXACT_BYTES)."""
    if not hasattr(data, "as_numpy_iterator"):
        x = np.asarray(inputs(data), dtype="float32")
        return SkPCA(n_components, whiten=whiten, random_state=0).fit(x.reshape(len(x), -1))
    chunks, size, pca = [], 0, None
    for batch in (data.take(steps) if steps else data).as_numpy_iterator():
        rows = np.asarray(inputs(batch), dtype="float32")
        chunks.append(rows.reshape(len(rows), -1))
        size += rows.nbytes
        if size > EXACT_BYTES and sum(len(c) for c in chunks) >= max(CHUNK_ROWS, n_components):
            pca = pca or IncrementalPCA(n_components, whiten=whiten)
            pca.partial_fit(np.concatenate(chunks))
            chunks, size = [], EXACT_BYTES  # from now on, one chunk at a time
    rest = np.concatenate(chunks) if chunks else None
    if pca is None:
        return SkPCA(n_components, whiten=whiten, random_state=0).fit(rest)
    if rest is not None and len(rest) >= n_components:
        pca.partial_fit(rest)
    return pca


def _mean_score(model, data, steps=None):
    if hasattr(data, "as_numpy_iterator"):
        data = data.take(steps) if steps else data
    return float(np.mean(model.score(data)))


@register_model("pca")
class PCA(Autoencoder):
    """Linear baseline: exact principal components (SVD), with the autoencoder contract."""

    tiny_config = {"latent_dim": 2}
    fixed_params = ("loss",)  # least squares: what PCA minimises

    def __init__(self, *, whiten=False, **kwargs):
        """`whiten`: codes of unit variance (each component divided by its standard
        deviation)."""
        super().__init__(loss="mse", **kwargs)
        self._check_undercomplete()
        self.whiten = bool(whiten)
        x = keras.Input(shape=self.data_shape, name="x")
        z = layers.Dense(self.latent_dim, name="z")(layers.Flatten()(x))
        zin = keras.Input(shape=(self.latent_dim,), name="z")
        out = layers.Dense(self.input_size, name="dec_out")(zin)
        out = layers.Reshape(self.data_shape, name="x_hat")(out)
        self.set_networks(keras.Model(x, z, name="encoder"), keras.Model(zin, out, name="decoder"))

    def compile(self, optimizer=None, **kwargs):
        # PCA takes no gradient steps, but evaluate() and saving expect a compiled model
        super().compile(optimizer=optimizer or "sgd", **kwargs)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_data=None,
        initial_epoch=0,
        **kwargs,
    ):
        """Exact PCA of the training data (incremental for a stream over EXACT_BYTES);
        `epochs` is ignored (one closed-form "epoch")."""
        if not self.compiled:
            self.compile()
        steps = kwargs.get("steps_per_epoch")  # a repeating (multi-worker) stream
        pca = fit_components(x, self._inputs, self.latent_dim, self.whiten, steps)
        scale = np.sqrt(pca.explained_variance_)[:, None] if self.whiten else 1.0
        enc_kernel = (pca.components_ / scale).T  # (D, k)
        dec_kernel = pca.components_ * scale  # (k, D)
        self.encoder.get_layer("z").set_weights([enc_kernel, -pca.mean_ @ enc_kernel])
        self.decoder.get_layer("dec_out").set_weights([dec_kernel, pca.mean_])
        self.explained_variance_ratio_ = pca.explained_variance_ratio_

        history = keras.callbacks.History()
        cbs = keras.callbacks.CallbackList(
            list(callbacks or []) + [history], model=self, epochs=1, verbose=0
        )
        cbs.on_train_begin()
        cbs.on_epoch_begin(initial_epoch)
        logs = {
            "loss": _mean_score(
                self,
                x if hasattr(x, "as_numpy_iterator") else np.asarray(self._inputs(x), "float32"),
                steps,
            )
        }
        if validation_data is not None:
            val = (
                validation_data
                if hasattr(validation_data, "as_numpy_iterator")
                else _as_array(validation_data, self._inputs)
            )
            logs["val_loss"] = _mean_score(self, val, kwargs.get("validation_steps"))
        cbs.on_epoch_end(initial_epoch, logs)
        cbs.on_train_end(logs)
        if verbose:
            print(
                f"pca: {self.latent_dim} components explain "
                f"{pca.explained_variance_ratio_.sum():.1%} of the variance; "
                + ", ".join(f"{k}={v:.5f}" for k, v in logs.items())
            )
        return history
