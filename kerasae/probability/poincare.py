"""The Poincaré ball of curvature -c and its wrapped normal, in plain ops tf2onnx converts.

Mathieu, Le Lan, Maddison, Tomioka and Teh, "Continuous Hierarchical Representations with
Poincaré Variational Auto-Encoders" (NeurIPS 2019); the gyrovector formulas of Ganea,
Bécigneul and Hofmann, "Hyperbolic Neural Networks" (NeurIPS 2018). The ball is
{z : c |z|^2 < 1} with the metric lambda_z^2 I, lambda_z = 2 / (1 - c |z|^2).

The wrapped normal N^W(mu, diag sigma^2): u ~ N(0, diag sigma^2) in orthonormal
coordinates of the tangent space at the origin, moved to mu by parallel transport and
mapped by exp_mu, i.e. z = exp_mu(u / lambda_mu) (transport from 0 scales a vector by
lambda_0 / lambda_mu, and orthonormal coordinates at 0 are lambda_0 = 2 times Euclidean
ones). Its log-density with respect to the ball's Riemannian volume is

    log N(u; 0, diag sigma^2) - (d - 1) log(sinh(sqrt(c) r) / (sqrt(c) r)),
    u = lambda_mu log_mu(z), r = |u| = d_c(mu, z),

the second term the log-determinant of exp_mu (Mathieu et al., eq. 6 and appendix B). With
respect to Lebesgue measure on the ball the density is this times lambda_z^{-d}; prior and
posterior here share the Riemannian volume, so their ratio (a KL, an importance weight) is
the same under either. pythae's PoincareVAE computes the same (its `pvae_utils`).
"""

import keras
from keras import ops

from kerasae.probability.likelihoods import HALF_LOG_2PI

BALL_EPS = 1e-5  # points are kept within (1 - BALL_EPS) / sqrt(c) of the origin (float32)
MIN_NORM = 1e-15


def _norm(v):
    return ops.sqrt(ops.maximum(ops.sum(v * v, axis=-1, keepdims=True), MIN_NORM * MIN_NORM))


def _artanh(x):
    x = ops.clip(x, -1.0 + BALL_EPS, 1.0 - BALL_EPS)
    return 0.5 * (ops.log(1.0 + x) - ops.log(1.0 - x))


def conformal_factor(x, c):
    """lambda_x = 2 / (1 - c |x|^2), shape (n, 1)."""
    return 2.0 / ops.maximum(1.0 - c * ops.sum(x * x, axis=-1, keepdims=True), MIN_NORM)


def project(x, c):
    """x pulled back inside the ball, to norm at most (1 - BALL_EPS) / sqrt(c)."""
    limit = (1.0 - BALL_EPS) / c**0.5
    # a factor rather than a where: the encoder's float16 ONNX takes no boolean casts
    return x * ops.minimum(1.0, limit / _norm(x))


def mobius_add(x, y, c):
    """x (+)_c y, Möbius addition (Ganea et al. 2018, eq. 3)."""
    x2 = ops.sum(x * x, axis=-1, keepdims=True)
    y2 = ops.sum(y * y, axis=-1, keepdims=True)
    xy = ops.sum(x * y, axis=-1, keepdims=True)
    num = (1.0 + 2.0 * c * xy + c * y2) * x + (1.0 - c * x2) * y
    return num / ops.maximum(1.0 + 2.0 * c * xy + c * c * x2 * y2, MIN_NORM)


def expmap0(v, c):
    """exp_0(v) = tanh(sqrt(c) |v|) v / (sqrt(c) |v|), for a Euclidean tangent vector v."""
    sqrt_c = c**0.5
    norm = _norm(v)
    return project(ops.tanh(sqrt_c * norm) * v / (sqrt_c * norm), c)


def logmap0(z, c):
    """log_0(z), the inverse of `expmap0`."""
    sqrt_c = c**0.5
    norm = _norm(z)
    return _artanh(sqrt_c * norm) * z / (sqrt_c * norm)


def expmap(x, v, c):
    """exp_x(v) = x (+) tanh(sqrt(c) lambda_x |v| / 2) v / (sqrt(c) |v|)."""
    sqrt_c = c**0.5
    norm = _norm(v)
    step = ops.tanh(sqrt_c * conformal_factor(x, c) * norm / 2.0) * v / (sqrt_c * norm)
    return project(mobius_add(x, step, c), c)


def logmap(x, z, c):
    """log_x(z) = 2 / (sqrt(c) lambda_x) artanh(sqrt(c) |-x (+) z|) (-x (+) z) / |-x (+) z|,
    the inverse of `expmap`."""
    sqrt_c = c**0.5
    sub = mobius_add(-x, z, c)
    norm = _norm(sub)
    return 2.0 / (sqrt_c * conformal_factor(x, c)) * _artanh(sqrt_c * norm) * sub / norm


def distance(x, z, c):
    """d_c(x, z) = 2 / sqrt(c) artanh(sqrt(c) |-x (+) z|), shape (n,)."""
    sqrt_c = c**0.5
    return 2.0 / sqrt_c * _artanh(sqrt_c * _norm(mobius_add(-x, z, c)))[..., 0]


def _log_sinhc(r):
    """log(sinh(r) / r) for r >= 0: its series near 0, r + log(1 - e^{-2r}) - log 2r above."""
    small = ops.minimum(r, 1e-2)
    large = ops.maximum(r, 1e-2)
    series = small * small / 6.0 - small**4 / 180.0
    exact = large + ops.log(1.0 - ops.exp(-2.0 * large)) - ops.log(2.0 * large)
    return ops.where(r < 1e-2, series, exact)


def wrapped_normal_draw(mu, log_var, eps, c):
    """z = exp_mu(sigma * eps / lambda_mu) ~ N^W(mu, diag sigma^2); eps ~ N(0, I) of mu's
    shape. Differentiable in mu and log_var (the reparameterisation trick on the ball)."""
    scale = ops.exp(0.5 * log_var)
    return expmap(mu, scale * ops.cast(eps, mu.dtype) / conformal_factor(mu, c), c)


def wrapped_normal_log_prob(z, mu, log_var, c):
    """log N^W(z; mu, diag exp(log_var)) per row, w.r.t. the Riemannian volume: (n,).
    `mu`, `log_var` broadcast against z (the prior: zeros)."""
    dim = z.shape[-1]
    u = conformal_factor(mu, c) * logmap(mu, z, c)  # orthonormal coordinates at mu
    log_var = ops.broadcast_to(log_var, ops.shape(u))
    log_normal = -0.5 * ops.sum(u * u * ops.exp(-log_var) + log_var + 2 * HALF_LOG_2PI, axis=-1)
    r = ops.sqrt(ops.maximum(ops.sum(u * u, axis=-1), MIN_NORM * MIN_NORM))
    return log_normal - (dim - 1) * _log_sinhc(c**0.5 * r)


@keras.saving.register_keras_serializable(package="kerasae")
class PoincareExpMap0(keras.layers.Layer):
    """A Euclidean vector -> the point exp_0(v) of the Poincaré ball of curvature -c: the
    encoder's last layer, so that its first output is the posterior's mean on the ball."""

    def __init__(self, curvature=1.0, **kwargs):
        super().__init__(**kwargs)
        self.curvature = float(curvature)

    def call(self, v):
        return expmap0(v, self.curvature)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "curvature": self.curvature}
