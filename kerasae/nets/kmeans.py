"""k-means++ seeding (Arthur and Vassilvitskii, SODA 2007) and nearest centroids, for the
VectorQuantizer's data-dependent codebook initialisation.
"""

import numpy as np
import tensorflow as tf


def sum_over_replicas(*tensors):
    """All-reduced across tf.distribute replicas (a no-op on one device)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tensors
    return tuple(ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(tensors)))


def nearest(z, centroids):
    d = np.sum(z**2, 1)[:, None] - 2.0 * z @ centroids.T + np.sum(centroids**2, 1)
    return np.argmin(d, axis=1)


def kmeans_pp(z, k, rng):
    """k-means++ seeding: each next centroid drawn with probability ~ squared distance to
    the nearest one chosen so far."""
    centroids = [z[rng.integers(len(z))]]
    d2 = np.sum((z - centroids[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(len(z), p=d2 / total) if total > 0 else rng.integers(len(z))
        centroids.append(z[i])
        d2 = np.minimum(d2, np.sum((z - z[i]) ** 2, axis=1))
    return np.stack(centroids)
