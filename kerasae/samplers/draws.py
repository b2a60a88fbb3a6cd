"""The exact numpy draws of every array-valued latent distribution, shared by the
samplers (kerasae.samplers) and mirrored by kerasae-runtime (its manifest.sample_prior):
one `numpy.random.default_rng(seed)`, these draws in this order, float64 until the end,
so `kerasae sample --seed S` and `kerasae-runtime generate --seed S` give the same images.
Mixture components are picked by inverse CDF on one uniform each (Bishop, Pattern
Recognition and Machine Learning, 2006, sec. 11.1 ancestral sampling).
"""
import numpy as np


def draw_gaussian(rng, mean, scale_tril, n):
    """n draws of N(mean, L L^T): eps first, float64 until the end."""
    eps = rng.standard_normal((n, len(mean)))
    return (np.asarray(mean) + eps @ np.asarray(scale_tril).T).astype("float32")


def draw_mixture(rng, weights, means, scales, n):
    """n draws of a Gaussian mixture: the components (one uniform each, inverse CDF),
    then eps. `scales`: Cholesky factors (K, d, d), or diagonal scales (K, d)."""
    weights, means, scales = (np.asarray(a, "float64") for a in (weights, means, scales))
    u = rng.random(n)
    pick = np.minimum(np.searchsorted(np.cumsum(weights), u, side="right"), len(weights) - 1)
    eps = rng.standard_normal((n, means.shape[1]))
    if scales.ndim == 2:
        return (means[pick] + scales[pick] * eps).astype("float32")
    return (means[pick] + np.einsum("nij,nj->ni", scales[pick], eps)).astype("float32")


def draw_spec(spec, n, seed=None):
    """n codes from an export manifest's array prior (standard_normal, gaussian, gmm,
    uniform), drawn as kerasae-runtime draws them for the same seed; None for other kinds."""
    rng, kind, dim = np.random.default_rng(seed), spec["kind"], int(spec["dim"])
    if kind == "standard_normal":
        return rng.standard_normal((n, dim)).astype("float32")
    if kind == "gaussian":
        return draw_gaussian(rng, spec["mean"], spec["scale_tril"], n)
    if kind == "gmm":
        scales = spec["scale_diag"] if "scale_diag" in spec else spec["scale_tril"]
        return draw_mixture(rng, spec["weights"], spec["means"], scales, n)
    if kind == "uniform":
        return rng.uniform(float(spec["low"]), float(spec["high"]), (n, dim)).astype("float32")
    return None
