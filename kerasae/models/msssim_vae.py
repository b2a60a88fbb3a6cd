"""`msssim_vae`: a VAE trained on a perceptual similarity (Snell, Ridgeway, Liao, Roads,
Mozer and Zemel, "Learning to Generate Images with Perceptual Similarity Metrics", ICIP
2017).

The pixel-wise reconstruction likelihood is replaced by the multi-scale structural
similarity (Wang, Simoncelli and Bovik 2003) between x and its reconstruction, which
rewards local structure and contrast rather than exact grey levels. Per example, with
z ~ q(z|x) reparameterized,

    loss = (1 - MS-SSIM(x, Dec(z))) + beta * KL(q(z|x) || N(0, I))

averaged over the batch: the weighting of pythae 0.1.2's MSSSIM_VAE, whose defaults on
MNIST-like data (its benchmark's config) are beta = 0.01 and a 3x3 window; they are ours.
The KL is in nats and 1 - MS-SSIM in [0, 1], hence the small beta. MS-SSIM is
`kerasae.probability.ssim.ms_ssim`: a Gaussian window (sigma 1.5) of `window_size`, as
many scales as the image allows (four on 28x28 with a 3x3 window). Two differences from
pythae, both to keep a per-example loss that the anomaly score can share: MS-SSIM is
computed per image, not pooled over the batch, and it is the standard product of the
scales' terms (pythae maps each into [0, 1] as (v + 1) / 2 and multiplies the last
scale's weighted SSIM into every other scale's term).

`score` is the loss itself per example (beta the constructor's), averaged over fixed
posterior draws: what scorer.onnx computes. `log_weights` (and so `kerasae evaluate
--log-likelihood`) is the VAE's, with the decoder's pixel likelihood (Bernoulli by
default), which this objective does not train.
"""

import numpy as np
from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import SCORE_DRAWS, VAE
from kerasae.probability.ssim import ms_ssim


@register_model("msssim_vae")
class MSSSIMVAE(VAE):
    """VAE whose reconstruction term is 1 - MS-SSIM (Snell et al. 2017), a perceptual loss."""

    generative = True
    score_description = (
        f"1 - MS-SSIM of the reconstruction + beta * KL, mean of {SCORE_DRAWS} fixed "
        "posterior draws"
    )
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8), "window_size": 3}

    def __init__(self, *, beta=0.01, window_size=3, **kwargs):
        """`beta`: the KL's weight against 1 - MS-SSIM (pythae's MNIST benchmark: 0.01);
        `window_size`: the Gaussian window's side, odd (pythae's benchmark: 3; its class
        default and Wang et al.'s: 11); images must be at least that large a side."""
        if isinstance(window_size, bool) or not isinstance(window_size, int):
            raise KerasaeError(f"window_size must be an odd integer >= 3, got {window_size!r}")
        if window_size < 3 or window_size % 2 == 0:
            raise KerasaeError(f"window_size must be an odd integer >= 3, got {window_size!r}")
        super().__init__(beta=beta, **kwargs)
        shape = self.data_shape
        if len(shape) not in (2, 3) or min(shape[:2]) < window_size:
            raise KerasaeError(
                f"msssim_vae needs images (height, width[, channels]) at least "
                f"{window_size} pixels a side (window_size), got input_shape {shape}"
            )
        self.window_size = window_size

    def perceptual_loss(self, x, x_hat):
        """1 - MS-SSIM per example, (batch,), in [0, 1]."""
        return 1.0 - ms_ssim(x, x_hat, self.window_size)

    def compute_losses(self, x, training=False):
        x, mean, log_var, z = self.posterior_draws(x, training=training)
        recon = self.perceptual_loss(x, self.decoder(z, training=training))
        kl = self.kl_divergence(mean, log_var, z)
        beta = ops.convert_to_tensor(self.beta_variable)
        return {
            "loss": ops.mean(recon + ops.cast(beta, kl.dtype) * kl),
            "reconstruction": ops.mean(recon),
            "kl": ops.mean(kl),
            "beta": beta,
        }

    def score_tensor(self, x, samples=SCORE_DRAWS, seed=0):
        """The loss per example at z = mean + std * eps for `samples` fixed eps (drawn
        once from `seed`, constants in scorer.onnx), beta the constructor's."""
        eps = np.random.default_rng(seed).standard_normal((samples, self.latent_dim))
        mean, log_var = self.encoder(x, training=False)
        z = mean[:, None] + ops.exp(0.5 * log_var)[:, None] * ops.cast(eps, mean.dtype)[None]
        z = ops.reshape(z, (-1, self.latent_dim))  # example-major, as posterior_draws
        x, mean, log_var = (ops.repeat(t, samples, axis=0) for t in (x, mean, log_var))
        recon = self.perceptual_loss(x, self.decoder(z))
        total = recon + self.beta * ops.cast(self.kl_divergence(mean, log_var, z), recon.dtype)
        return ops.mean(ops.reshape(total, (-1, samples)), axis=1)
