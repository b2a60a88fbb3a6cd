"""`diag`: a Gaussian with a diagonal covariance fitted to the codes (no correlations).

Exported as a one-component mixture with diagonal scales, a prior kerasae-runtime draws
as it is, so `kerasae-runtime generate` needs nothing new.
"""

import numpy as np

from kerasae.samplers import LatentSampler, register_sampler
from kerasae_runtime.manifest import draw_mixture


@register_sampler("diag")
class DiagonalGaussian(LatentSampler):
    """A Gaussian with a diagonal covariance, fitted to the codes."""

    defaults = {"min_scale": 1e-3}

    def fit_codes(self, codes, seed):
        self.mean = codes.mean(axis=0)
        self.scale = np.maximum(codes.std(axis=0), self.options["min_scale"])

    def sample_latent(self, n, seed=None):
        return draw_mixture(
            np.random.default_rng(seed), [1.0], self.mean[None], self.scale[None], int(n)
        )

    def state(self):
        return {"mean": self.mean, "scale": self.scale}

    def restore(self, meta, arrays, folder):
        self.mean, self.scale = arrays["mean"], arrays["scale"]

    def export_spec(self):
        return {
            "kind": "gmm",
            "dim": int(self.latent_dim),
            "weights": [1.0],
            "means": [self.mean.tolist()],
            "scale_diag": [self.scale.tolist()],
            "source": self.describe(),
        }
