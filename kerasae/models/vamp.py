"""`vamp`: the VAE with a VampPrior (Tomczak and Welling, "VAE with a VampPrior", AISTATS
2018).

The prior that maximises the ELBO is the aggregate posterior (1/N) sum_n q(z|x_n); the
VampPrior ("variational mixture of posteriors") approximates it with K learned
pseudo-inputs u_1..u_K passed through the same encoder:

    p(z) = (1/K) sum_k q(z | u_k)

and the loss is the negative ELBO with that prior, NLL + beta KL per example. The KL has
no closed form, so it is the one-draw Monte Carlo estimate log q(z|x) - log p(z) at the
draw that also feeds the decoder. The pseudo-inputs are trainable weights shaped like one
example, initialised with uniform noise over the data's range [0, 1], and trained with
everything else by the same gradient (their gradient reaches them through the encoder).
They belong to the model, not to the networks: the exported encoder and decoder are the
VAE's, and the manifest's prior is the mixture itself (the components' means and
diagonal scales), which kerasae-runtime samples like a fitted Gaussian mixture.
"""

import keras
import numpy as np

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE
from kerasae.probability.gaussian import LOG_VAR_RANGE, mixture_log_prob


@register_model("vamp")
class VampVAE(VAE):
    """VAE with a VampPrior (Tomczak and Welling 2018): a mixture of pseudo-input posteriors."""

    tiny_config = {
        "latent_dim": 2,
        "hidden_units": (16,),
        "filters": (4, 8),
        "num_pseudo_inputs": 16,
    }

    fixed_params = ("kl",)  # the mixture prior has no closed-form KL: always one draw

    def __init__(self, *, num_pseudo_inputs=500, **kwargs):
        """`num_pseudo_inputs`: K, the mixture's components (the paper's 500 for MNIST);
        `beta` weighs the KL (--beta-schedule anneals it: the paper warms it up)."""
        if (
            isinstance(num_pseudo_inputs, bool)
            or not isinstance(num_pseudo_inputs, int)
            or num_pseudo_inputs < 1
        ):
            raise KerasaeError(
                f"num_pseudo_inputs must be a positive integer, got {num_pseudo_inputs!r}"
            )
        super().__init__(kl="mc", **kwargs)
        self.num_pseudo_inputs = num_pseudo_inputs
        self.pseudo_inputs = self.add_weight(
            shape=(num_pseudo_inputs, *self.data_shape),
            name="pseudo_inputs",
            initializer=keras.initializers.RandomUniform(0.0, 1.0),
        )

    def prior_components(self, training=False):
        """(means, log_vars) of the K mixture components q(z | u_k): each (K, latent_dim)."""
        return self.encoder(self.pseudo_inputs, training=training)

    def log_prior(self, z):
        """log p(z) = log (1/K) sum_k q(z | u_k) per example."""
        means, log_vars = self.prior_components()
        return mixture_log_prob(z, means, log_vars)

    def kl_divergence(self, mean, log_var, z):
        """log q(z|x) - log p(z) at the draw z: the mixture prior has no closed-form KL."""
        return self.monte_carlo_kl(mean, log_var, z)

    def sample(self, n, seed=None):
        """Decoder means of `n` draws from the VampPrior: a uniformly chosen pseudo-input,
        then a draw from its posterior q(z | u_k). Shape (n, *input_shape)."""
        means, log_vars = (np.asarray(t, dtype="float64") for t in self.prior_components())
        rng = np.random.default_rng(seed)
        pick = rng.integers(self.num_pseudo_inputs, size=int(n))
        eps = rng.standard_normal((int(n), self.latent_dim))
        z = means[pick] + np.exp(0.5 * np.clip(log_vars[pick], *LOG_VAR_RANGE)) * eps
        return self.decode(z.astype("float32"))

    def prior_spec(self):
        """The export manifest's prior: the VampPrior itself, a Gaussian mixture with equal
        weights whose components are the pseudo-input posteriors q(z | u_k) (means and
        diagonal scales, clipped as `sample` clips them), so kerasae-runtime draws from
        the model's own prior."""
        means, log_vars = (np.asarray(t, dtype="float64") for t in self.prior_components())
        scales = np.exp(0.5 * np.clip(log_vars, *LOG_VAR_RANGE))
        k = self.num_pseudo_inputs
        return {
            "kind": "gmm",
            "dim": int(self.latent_dim),
            "weights": [1.0 / k] * k,
            "means": means.tolist(),
            "scale_diag": scales.tolist(),
            "source": f"the model's VampPrior: an equal-weight mixture of {k} "
            "pseudo-input posteriors (Tomczak and Welling 2018)",
        }
