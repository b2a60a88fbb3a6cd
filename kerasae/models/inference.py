"""Inference on a trained autoencoder: codes, reconstructions, anomaly scores and samples.

Every method runs batch by batch over an array or a (finite) tf.data pipeline, so scoring a
large split never holds it whole. `score` is the per-example reconstruction error of
Japkowicz et al. (1995), the anomaly score `kerasae detect` thresholds; a family with
another score (a VAE's negative ELBO) overrides `score` and `score_tensor` together.
"""

import numpy as np
import tensorflow as tf

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.probability.likelihoods import per_example_error


class Inference:
    """The inference half of `kerasae.models.base.Autoencoder` (a mixin of it)."""

    def _batched(self, fn, x, batch_size=256):
        """`fn` over an array in batches, or over the batches of a (finite) tf.data.Dataset
        (e.g. `data.batches("test", 256)`: streamed, never all in memory at once)."""
        if isinstance(x, tf.data.Dataset):
            outs = [np.asarray(fn(tf.cast(self._inputs(b), "float32"))) for b in x]
        else:
            x = np.asarray(x, dtype="float32")
            outs = [
                np.asarray(fn(tf.constant(x[i : i + batch_size])))
                for i in range(0, len(x), batch_size)
            ]
        if not outs:
            raise KerasaeError("no examples given (the input array is empty)")
        return np.concatenate(outs)

    def encode(self, x, batch_size=256):
        """Deterministic latent codes (the posterior mean for probabilistic models)."""
        return self._batched(lambda b: self.encoder(b, training=False), x, batch_size)

    def decode(self, z, batch_size=256):
        return self._batched(lambda b: self.decoder(b, training=False), z, batch_size)

    def reconstruct(self, x, batch_size=256):
        return self._batched(lambda b: self(b, training=False), x, batch_size)

    def score(self, x, batch_size=256):
        """Per-example anomaly score: mean squared reconstruction error (higher = stranger)."""
        return self._batched(self.score_tensor, x, batch_size)

    def score_tensor(self, x):
        """The score of a batch tensor, shape (batch,): traceable, with no randomness and no
        dependence on the batch, since the export's scorer.onnx is this graph. A family
        whose `score` is not the reconstruction error overrides both."""
        return per_example_error(x, self(x, training=False))

    def sample(self, n, seed=None):
        raise NotGenerativeError(self.not_generative_reason())

    def not_generative_reason(self):
        """Why `sample` refuses: also what an export records and kerasae-runtime prints."""
        return (
            f"model {getattr(self, 'registered_name', type(self).__name__)!r} is not "
            "generative (it has no prior to sample from); train a generative family "
            "such as vae, beta_vae, aae, wae or rae"
        )
