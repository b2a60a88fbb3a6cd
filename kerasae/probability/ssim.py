"""SSIM and multi-scale SSIM, written once in ops tf2onnx converts.

SSIM: Wang, Bovik, Sheikh and Simoncelli, "Image Quality Assessment: From Error Visibility
to Structural Similarity", IEEE TIP 2004. MS-SSIM: Wang, Simoncelli and Bovik,
"Multiscale Structural Similarity for Image Quality Assessment", Asilomar 2003.

Local means, variances and the covariance come from a Gaussian window (sigma 1.5) applied
as a depthwise convolution over the valid positions, as `tf.image.ssim` does:

    luminance l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    contrast-structure cs = (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)
    SSIM = mean over the map of l * cs,    C1 = (0.01 L)^2, C2 = (0.03 L)^2

MS-SSIM = prod_{j < M} cs_j^{w_j} * SSIM_M^{w_M}, the images halved (2x2 average pool)
between scales. `tf.image.ssim_multiscale` needs images of at least 176 pixels a side for
its five scales; here M is as many scales as the image allows (at most five, while the
side is at least the window), and the weights are Wang et al.'s first M, renormalised to
sum to one: on 28x28 images, two scales with an 11x11 window, four with a 3x3 one. Each
scale's term is floored at 1e-6 before its power (`tf.image.ssim_multiscale` clips at 0,
whose power has no gradient). Values are per example, the mean over channels of each
channel's MS-SSIM (as TensorFlow's).
"""

import numpy as np
from keras import ops

from kerasae.errors import KerasaeError

#: the five scales' exponents of Wang, Simoncelli and Bovik (2003)
WANG_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
K1, K2 = 0.01, 0.03
SIGMA = 1.5
FLOOR = 1e-6  # each scale's term before its power: 0 ** w has no gradient


def gaussian_window(size, sigma=SIGMA):
    """(size, size) Gaussian weights summing to one, centred at (size - 1) / 2 (numpy)."""
    coords = np.arange(size, dtype="float64") - (size - 1) / 2.0
    g = np.exp(-0.5 * np.square(coords) / sigma**2)
    window = np.outer(g, g)
    return window / window.sum()


def scales_for(shape, window_size):
    """How many scales an image of `shape` (h, w[, c]) allows with this window: halvings
    while the smaller side is at least `window_size`, at most five."""
    side, scales = min(int(shape[0]), int(shape[1])), 0
    while side >= window_size and scales < len(WANG_WEIGHTS):
        scales, side = scales + 1, side // 2
    return scales


def _images(t):
    """(batch, h, w, c) in float32 (float64 kept): a channel axis added to (batch, h, w)."""
    t = ops.cast(t, "float64" if t.dtype == "float64" else "float32")
    return ops.expand_dims(t, -1) if len(t.shape) == 3 else t


def ssim_terms(x, y, window_size=11, sigma=SIGMA, max_val=1.0):
    """(SSIM, cs), each (batch, channels): the means over the valid positions of each
    channel's SSIM map and contrast-structure map at one scale."""
    x, y = _images(x), _images(y)
    channels = int(x.shape[-1])
    kernel = np.tile(gaussian_window(window_size, sigma)[:, :, None, None], (1, 1, channels, 1))
    kernel = ops.cast(kernel, x.dtype)

    def blur(t):
        return ops.depthwise_conv(t, kernel, strides=1, padding="valid")

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - ops.square(mu_x)
    var_y = blur(y * y) - ops.square(mu_y)
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * max_val) ** 2, (K2 * max_val) ** 2
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    luminance = (2.0 * mu_x * mu_y + c1) / (ops.square(mu_x) + ops.square(mu_y) + c1)
    return ops.mean(luminance * cs, axis=(1, 2)), ops.mean(cs, axis=(1, 2))


def ssim(x, y, window_size=11, sigma=SIGMA, max_val=1.0):
    """Single-scale SSIM per example, (batch,): `tf.image.ssim` with this window."""
    return ops.mean(ssim_terms(x, y, window_size, sigma, max_val)[0], axis=-1)


def ms_ssim(x, y, window_size=11, sigma=SIGMA, max_val=1.0):
    """MS-SSIM per example, (batch,), over as many scales as the image allows (module
    docstring); 1 for identical images. KerasaeError if a side is under the window."""
    x, y = _images(x), _images(y)
    scales = scales_for(x.shape[1:], window_size)
    if scales == 0:
        raise KerasaeError(
            f"MS-SSIM with a {window_size}x{window_size} window needs images at least "
            f"{window_size} pixels a side, got {tuple(x.shape[1:3])}"
        )
    weights = np.asarray(WANG_WEIGHTS[:scales]) / sum(WANG_WEIGHTS[:scales])
    product = None
    for j, weight in enumerate(weights):
        whole, cs = ssim_terms(x, y, window_size, sigma, max_val)
        term = ops.power(ops.maximum(whole if j == scales - 1 else cs, FLOOR), float(weight))
        product = term if product is None else product * term
        if j < scales - 1:
            x = ops.average_pool(x, 2, strides=2, padding="valid")
            y = ops.average_pool(y, 2, strides=2, padding="valid")
    return ops.mean(product, axis=-1)
