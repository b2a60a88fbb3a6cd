"""The training data of a learned latent sampler: its codes standardised, in batches.

A learned sampler (two_stage, Dai and Wipf 2019; the maf and iaf flows) trains on the
codes of the training examples scaled to zero mean and unit spread per dimension. The
mean and scale are weights of its network (`code_mean`, `code_scale`), so the exported
sampler.onnx un-standardises inside the graph.
"""

import numpy as np
import tensorflow as tf


def standardised_batches(net, codes, batch_size, seed):
    """Set `net`'s code_mean and code_scale from `codes` (a dead dimension keeps a tiny
    scale) and return (a shuffled, seeded tf.data pipeline of the standardised codes in
    batches of at most `batch_size`, the batch size used, the scale in float64)."""
    mean, scale = codes.mean(axis=0), codes.std(axis=0)
    scale = np.maximum(scale, 1e-6 * max(1.0, float(scale.max())))  # a dead dimension
    net.code_mean.assign(mean.astype("float32"))
    net.code_scale.assign(scale.astype("float32"))
    z = ((codes - mean) / scale).astype("float32")
    batch = min(batch_size, len(z))
    ds = (
        tf.data.Dataset.from_tensor_slices(z)
        .shuffle(len(z), seed=int(seed))
        .batch(batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return ds, batch, scale
