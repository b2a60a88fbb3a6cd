"""MMD with multi-scale kernels (Gretton et al., JMLR 2012; the IMQ kernel of WAE-MMD,
Tolstikhin et al., ICLR 2018).
"""

from keras import ops

from kerasae.probability.likelihoods import flat_float

# ---------------------------------------------------------------- MMD (Gretton et al. 2012)
#: bandwidth multipliers of the multi-scale kernels, as in Tolstikhin et al. 2018's code
MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


MMD_KERNELS = ("imq", "rbf")


def _sq_distances(a, b):
    a2 = ops.sum(ops.square(a), axis=-1, keepdims=True)
    b2 = ops.sum(ops.square(b), axis=-1, keepdims=True)
    return ops.maximum(a2 + ops.transpose(b2) - 2.0 * ops.matmul(a, ops.transpose(b)), 0.0)


def mmd_kernel(a, b, kernel="imq", scales=None):
    """Sum over scales s of k_s(a_i, b_j), with C = 2 * dim * s (2 d sigma^2 for N(0, I)).

    "imq" is C / (C + |a-b|^2) (heavy tails keep gradients alive far from the prior, the
    WAE paper's choice); "rbf" is exp(-|a-b|^2 / C).
    """
    if kernel not in MMD_KERNELS:
        raise ValueError(f"kernel must be one of {MMD_KERNELS}, got {kernel!r}")
    d2 = _sq_distances(a, b)
    dim = ops.cast(ops.shape(a)[-1], "float32")
    total = 0.0
    for s in MMD_SCALES if scales is None else scales:
        c = 2.0 * dim * float(s)
        total = total + (c / (c + d2) if kernel == "imq" else ops.exp(-d2 / c))
    return total


def mmd_unbiased(x, y, kernel="imq", scales=None):
    """Unbiased estimate of MMD^2 between samples x (n, d) and y (m, d); may be < 0."""
    x, y = flat_float(x), flat_float(y)
    n = ops.cast(ops.shape(x)[0], "float32")
    m = ops.cast(ops.shape(y)[0], "float32")
    kxx = mmd_kernel(x, x, kernel, scales)
    kyy = mmd_kernel(y, y, kernel, scales)
    kxy = mmd_kernel(x, y, kernel, scales)
    # drop the diagonal (k(x_i, x_i)) from the within-sample terms: that is the unbiasing
    # (a batch of one has no pairs: its within-sample term is 0 rather than 0 / 0)
    xx = (ops.sum(kxx) - ops.trace(kxx)) / ops.maximum(n * (n - 1.0), 1.0)
    yy = (ops.sum(kyy) - ops.trace(kyy)) / ops.maximum(m * (m - 1.0), 1.0)
    return xx + yy - 2.0 * ops.mean(kxy)
