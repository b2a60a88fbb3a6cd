"""Smoothness and sparsity penalties: the decoder Jacobian's Frobenius norm (RAE-GP, Ghosh et
al. 2020; random projections of Hoffman, Roberts and Yaida 2019) and the sparsity KL (Ng 2011).
"""

import keras
import tensorflow as tf
from keras import ops

from kerasae.probability.likelihoods import flat_float


# ------------------------------------------- smoothness and sparsity (RAE, sparse AE)
def jacobian_penalty(fn, z, projections=None, seed=None):
    """Mean over examples of ||d fn(z) / dz||_F^2 / (outputs per example): the squared
    Frobenius norm of the Jacobian, averaged per output feature (the scale of the per-pixel
    mean reconstruction loss). Differentiable (backward over forward mode).

    `projections=None`: exact, one JVP per latent dimension (`fn` runs once on the codes
    repeated `dim` times; reverse mode would need one pass per output pixel). An int k:
    the unbiased random-projection estimate E_u ||J u||^2 = ||J||_F^2, u ~ N(0, I), from
    k directions per example (Hoffman, Roberts and Yaida 2019 find one enough for training):
    `fn` runs on k copies whatever the latent size (measured on CPU, an MLP decoder with
    dim=16: 365 ms per gradient step exact, 21 ms with one projection).
    """
    n, dim = ops.shape(z)[0], z.shape[-1]
    copies = dim if projections is None else int(projections)
    repeated = ops.repeat(z, copies, axis=0)  # example-major: rows i*copies ... + copies - 1
    if projections is None:
        directions = ops.tile(ops.eye(dim, dtype=z.dtype), (n, 1))
    else:
        directions = ops.cast(keras.random.normal(ops.shape(repeated), seed=seed), z.dtype)
    with tf.autodiff.ForwardAccumulator(repeated, directions) as acc:
        out = fn(repeated)
    products = flat_float(acc.jvp(out))  # (n * copies, outputs): J e_k, or J u
    count = ops.cast(n, "float32") * ops.cast(ops.shape(products)[1], "float32")
    if projections is not None:
        count = count * float(copies)  # the mean over directions
    return ops.sum(ops.square(products)) / count


def sparsity_kl(rho, rho_hat, eps=1e-6):
    """sum_j KL(Bernoulli(rho) || Bernoulli(rho_hat_j)) (Ng 2011, "Sparse autoencoder"):
    zero when every unit's mean activation rho_hat_j equals the target rho, growing without
    bound as one nears 0 or 1 (clipped at `eps` so that a dead unit costs a finite amount)."""
    rho_hat = ops.clip(ops.cast(rho_hat, "float32"), eps, 1.0 - eps)
    return ops.sum(
        rho * ops.log(rho / rho_hat) + (1.0 - rho) * ops.log((1.0 - rho) / (1.0 - rho_hat))
    )
