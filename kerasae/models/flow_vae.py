"""`FlowVAE`: the VAE whose posterior is a Gaussian pushed through a normalizing flow, the
shared body of `vae_linnf` and `vae_iaf`.

Rezende and Mohamed, "Variational Inference with Normalizing Flows" (ICML 2015), eq. 15:
z_0 ~ q_0(z|x) = N(mean, diag exp(log_var)), z_K = f_K o ... o f_1(z_0), and

    log q_K(z_K|x) = log q_0(z_0|x) - sum_k log|det df_k/dz_(k-1)|,

so the loss is the negative ELBO  -log p(x|z_K) + beta [log q_K(z_K|x) - log p(z_K)] with
the N(0, I) prior, a one-draw Monte Carlo KL (it has no closed form), and `log_weights`
the importance weight log p(x|z_K) + log p(z_K) - log q_K(z_K|x) that IWAE-style bounds
and `kerasae evaluate --log-likelihood` use.

The flow (`kerasae.nets.flows.FlowStack`) lives inside the exported encoder, whose outputs
are [z, z_mean, z_log_var]: z = f(mean), the code `encode` returns and the decoder takes,
then q_0's parameters (`encode_distribution`). `score_tensor` pushes its fixed draws
through the flow and counts its log-determinant, so scorer.onnx is the flow's negative
ELBO too. `sample` decodes N(0, I) draws, the prior, as the VAE does.
"""

import keras
import numpy as np
from keras import ops

from kerasae.models.vae import SCORE_DRAWS, VAE
from kerasae.nets.flows import FlowStack
from kerasae.probability.gaussian import LOG_VAR_RANGE, posterior_log_prob


class FlowVAE(VAE):
    """A VAE with a normalizing flow after its Gaussian posterior (a base, not registered)."""

    fixed_params = ("kl",)  # log q_K has no closed form: always the one-draw estimate

    def __init__(self, **kwargs):
        """A subclass gives `flow_spec()`: FlowStack's keyword arguments (flows, ...)."""
        super().__init__(kl="mc", **kwargs)

    def flow_spec(self):
        """FlowStack's arguments besides `units`: {"flows": (...), ...}."""
        raise NotImplementedError

    def build_encoder(self, output_names=("z",), **overrides):
        """x -> [z = f(z_mean), z_mean, z_log_var]: q_0's network (`self.q0`) with the flow
        (`self.flow`) on its mean."""
        q0 = super().build_encoder(output_names=output_names, **overrides)
        self.q0 = q0
        self.flow = FlowStack(self.latent_dim, **self.flow_spec(), name="z")
        if getattr(q0, "inputs", None) and len(q0.outputs) == 2:
            inputs, (mean, log_var) = q0.inputs[0], q0.outputs
        else:  # a subclassed network brought by the user: called as one layer
            inputs = keras.Input(self.data_shape, name="x")
            mean, log_var = q0(inputs)
            mean = keras.layers.Identity(name="z_mean")(mean)
            log_var = keras.layers.Identity(name="z_log_var")(log_var)
        return keras.Model(inputs, [self.flow(mean), mean, log_var], name="encoder")

    # ------------------------------------------------------------------ the posterior
    def call(self, x, training=False):
        if training:
            return self.decoder(self.posterior_draws(x, training=True)[3], training=True)
        return self.decoder(self.encoder(x, training=False)[0], training=False)

    def flow_draws(self, x, draws=1, seed=None, training=False):
        """(x, mean, log_var, z_0, z_K, log_det): `draws` z_0 ~ q_0(z|x) per example
        (repeated example-major, as `posterior_draws`) and their image under the flow."""
        mean, log_var = self.q0(x, training=training)
        if draws > 1:
            x, mean, log_var = (ops.repeat(t, draws, axis=0) for t in (x, mean, log_var))
        z0 = self.posterior.sample(mean, log_var, seed=seed)
        z, log_det = self.flow.transform(z0)
        return x, mean, log_var, z0, z, log_det

    def posterior_draws(self, x, draws=1, seed=None, training=False):
        """(x, mean, log_var, z_K): q_0's parameters and draws z_K ~ q_K(z|x)."""
        x, mean, log_var, _, z, _ = self.flow_draws(x, draws, seed, training)
        return x, mean, log_var, z

    def flow_kl(self, mean, log_var, z0, z, log_det):
        """log q_K(z_K|x) - log p(z_K) = log q_0(z_0|x) - log|det| - log p(z_K), per example."""
        return posterior_log_prob(z0, mean, log_var) - log_det - self.log_prior(z)

    def weight_terms(self, x, k=1, seed=None, training=False):
        """(nll, kl), each (batch, k): -log p(x|z_K) and log q_K(z_K|x) - log p(z_K) at k
        draws; `log_weights` is -(nll + kl), the flow's log-determinant included."""
        x, mean, log_var, z0, z, log_det = self.flow_draws(x, k, seed, training)
        nll = self.decoder_nll(x, z, training)
        kl = self.flow_kl(mean, log_var, z0, z, log_det)
        return ops.reshape(nll, (-1, k)), ops.reshape(kl, (-1, k))

    def _elbo_parts(self, x, beta=None, seed=None, training=False, draws=1):
        """VAE's, with the flow's KL: ((mean, log_var, z_K), (nll, kl, nll + beta kl))."""
        x, mean, log_var, z0, z, log_det = self.flow_draws(x, draws, seed, training)
        nll = self.decoder_nll(x, z, training)
        kl = self.flow_kl(mean, log_var, z0, z, log_det)
        if draws > 1:
            nll, kl = (ops.mean(ops.reshape(t, (-1, draws)), axis=1) for t in (nll, kl))
        if beta is None:
            beta = self.beta_variable
        return (mean, log_var, z), (nll, kl, nll + ops.cast(beta, nll.dtype) * kl)

    # ------------------------------------------------------------------ inference
    def encode_distribution(self, x, batch_size=256):
        """(z_mean, z_log_var) of q_0(z|x), the Gaussian before the flow."""
        both = self._batched(
            lambda b: ops.stack(self.encoder(b, training=False)[1:], axis=1), x, batch_size
        )
        return both[:, 0], both[:, 1]

    def score_tensor(self, x, samples=SCORE_DRAWS, seed=0):
        """The negative ELBO at z_0 = mean + std * eps for `samples` fixed eps (drawn once
        from `seed`), pushed through the flow, its log-determinant in the KL: the graph
        scorer.onnx holds."""
        eps = np.random.default_rng(seed).standard_normal((samples, self.latent_dim))
        _, mean, log_var = self.encoder(x, training=False)
        std = ops.exp(0.5 * ops.clip(log_var, *LOG_VAR_RANGE))
        z0 = mean[:, None] + std[:, None] * ops.cast(eps, mean.dtype)[None]
        z0 = ops.reshape(z0, (-1, self.latent_dim))  # example-major, as flow_draws
        x, mean, log_var = (ops.repeat(t, samples, axis=0) for t in (x, mean, log_var))
        z, log_det = self.flow.transform(z0)
        total = self.decoder_nll(x, z) + self.flow_kl(mean, log_var, z0, z, log_det)
        return ops.mean(ops.reshape(total, (-1, samples)), axis=1)
