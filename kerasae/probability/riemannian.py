"""The RHVAE's learned Riemannian metric and its densities, written once in plain ops.

Chadebec, Mantoux and Allassonnière, "Geometry-Aware Hamiltonian Variational
Auto-Encoder" (2020): the inverse metric is a kernel mixture of N matrices M_i = L_i L_i^T
placed at centroids c_i,

    G^{-1}(z) = sum_i M_i exp(-||z - c_i||^2 / T^2) + lambda I,

and the gradient in z of any <S, G^{-1}(z)> (S held fixed; S = rho rho^T for the kinetic
energy's quadratic form, S = G(z) for d/dz log det G^{-1}(z)) has the closed form
-2/T^2 sum_i <S, M_i> w_i(z) (z - c_i), a matrix product over the N centroids, so the
generalised leapfrog needs no tape for the metric's terms.
"""

import math

from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


class KernelMetric:
    """G^{-1}(z) of `centroids` (N, d) and `matrices` (N, d, d); `mask` (N,) switches
    centroids off (an unfilled bank)."""

    def __init__(self, centroids, matrices, temperature, regularization, mask=None):
        self.centroids = ops.cast(centroids, "float32")
        d = ops.shape(self.centroids)[-1]
        self.dim = d
        self.flat = ops.reshape(ops.cast(matrices, "float32"), (-1, d * d))  # (N, d^2)
        self.scale = 1.0 / float(temperature) ** 2
        self.regularization = float(regularization)
        self.mask = None if mask is None else ops.cast(mask, "float32")

    def weights(self, z):
        """w_i(z) = exp(-||z - c_i||^2 / T^2): (B, N)."""
        sq = (
            ops.sum(ops.square(z), axis=-1, keepdims=True)
            - 2.0 * ops.matmul(z, ops.transpose(self.centroids))
            + ops.sum(ops.square(self.centroids), axis=-1)[None]
        )
        w = ops.exp(-self.scale * ops.maximum(sq, 0.0))
        return w if self.mask is None else w * self.mask[None]

    def inverse(self, z):
        """G^{-1}(z): (B, d, d)."""
        d = self.dim
        g = ops.reshape(ops.matmul(self.weights(z), self.flat), (-1, d, d))
        return g + self.regularization * ops.eye(d, dtype="float32")[None]

    def inner_gradient(self, z, s):
        """d/dz <S, G^{-1}(z)> for a fixed S (B, d, d): (B, d)."""
        a = ops.matmul(ops.reshape(s, (-1, self.dim * self.dim)), ops.transpose(self.flat))
        aw = a * self.weights(z)  # (B, N)
        pull = ops.sum(aw, axis=-1, keepdims=True) * z - ops.matmul(aw, self.centroids)
        return -2.0 * self.scale * pull


def matvec(m, v):
    """m @ v over a batch: (B, d, d), (B, d) -> (B, d)."""
    return ops.squeeze(ops.matmul(m, v[..., None]), -1)


def quadratic(v, m):
    """v^T m v over a batch: (B,)."""
    return ops.sum(v * matvec(m, v), axis=-1)


def log_det_spd(m):
    """log det of symmetric positive definite matrices (B, d, d): (B,)."""
    chol = ops.cholesky(m)
    return 2.0 * ops.sum(ops.log(ops.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def momentum_log_prob(rho, inverse_metric):
    """log N(rho; 0, G) given G^{-1}: -rho^T G^{-1} rho / 2 + log det G^{-1} / 2 - d/2 log 2 pi."""
    d = ops.shape(rho)[-1]
    return 0.5 * (
        log_det_spd(inverse_metric) - quadratic(rho, inverse_metric) - float(d) * LOG_2PI
    )


def lower_triangular(diag, lower, dim):
    """L (B, d, d) with exp(diag) on the diagonal and `lower` (B, d(d-1)/2) below it, row
    by row (pythae's Metric_MLP)."""
    index, k = [], 1
    for i in range(dim):
        for j in range(dim):
            if i > j:
                index.append(k)
                k += 1
            else:
                index.append(0)
    batch = ops.shape(diag)[0]
    padded = ops.concatenate([ops.zeros((batch, 1), diag.dtype), lower], axis=-1)
    below = ops.reshape(ops.take(padded, index, axis=1), (-1, dim, dim))
    return below + ops.eye(dim, dtype=diag.dtype)[None] * ops.exp(diag)[:, None, :]
