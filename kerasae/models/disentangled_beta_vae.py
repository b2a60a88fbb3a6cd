"""`disentangled_beta_vae`: the beta-VAE with a controlled, annealed capacity (Burgess,
Higgins, Pal, Matthey, Watters, Desjardins and Lerchner, "Understanding disentangling in
beta-VAE", NIPS 2017 Workshop on Learning Disentangled Representations, arXiv 1804.03599).

beta-VAE's large KL weight squeezes the code until it carries too little about x. Burgess
et al. instead hold the KL at a target capacity C (in nats) and raise C during training,
so the code first encodes the factor that pays most in reconstruction and takes on the
others one by one as its capacity grows:

    loss = reconstruction NLL + gamma * |KL(q(z|x) || N(0, I)) - C|

with C rising linearly from `c_min` to `c_max` over the first `anneal_steps` training
steps, then held. Both terms are in nats per example (summed over pixels and latents), the
KL averaged over the batch before the absolute value, as in disentanglement_lib's
`AnnealedVAE`.

Defaults are the paper's and disentanglement_lib's on dSprites: gamma = 1000, C from 0 to
25 nats over 100000 steps (Locatello et al. 2019 varied c_max in {5, 10, 25, 50, 75, 100}).
A step is one batch: with another batch size or data set, set `anneal_steps` to the epochs
wanted times the steps per epoch. pythae names this family DisentangledBetaVAE (its `beta`
is gamma here, its `warmup_epoch` our `anneal_steps` counted in epochs).

The step count is a non-trainable weight, advanced after each optimizer step
(`after_step`), so C moves inside the compiled step and comes back with a saved model, a
checkpoint and `--resume`. C is logged as the metric `capacity`. There is no beta to
anneal (`--beta-schedule` refuses it); the export, the score (the negative ELBO) and the
log-likelihood estimate are the VAE's.
"""

from keras import ops

from kerasae.errors import KerasaeError
from kerasae.models.registry import register_model
from kerasae.models.vae import VAE


@register_model("disentangled_beta_vae")
class DisentangledBetaVAE(VAE):
    """beta-VAE with annealed capacity (Burgess et al. 2018): gamma * |KL - C|, C rising."""

    loss_names = ("loss", "reconstruction", "kl")
    metric_names = ("capacity",)  # C in nats: moves every step, never differentiated
    uses_beta = False  # gamma weighs |KL - C|; the capacity schedule replaces KL annealing
    tiny_config = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}

    fixed_params = ("beta",)  # the KL is held at C, not weighted

    def __init__(self, *, gamma=1000.0, c_min=0.0, c_max=25.0, anneal_steps=100000, **kwargs):
        """`gamma`: the weight of |KL - C| (the paper's 1000); `c_min`, `c_max`: the
        capacity C in nats at the first step and after `anneal_steps` training steps
        (batches), linear in between (the paper's 0 and 25 over 100000 steps; 0 steps:
        C = c_max throughout). The other arguments are the VAE's."""
        for key, value in (("gamma", gamma), ("c_min", c_min), ("c_max", c_max)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise KerasaeError(f"{key} must be a number >= 0, got {value!r}")
        if c_min > c_max:
            raise KerasaeError(
                f"c_min must not exceed c_max (C rises from c_min to c_max), got "
                f"c_min={c_min!r}, c_max={c_max!r}"
            )
        if isinstance(anneal_steps, bool) or not isinstance(anneal_steps, int) or anneal_steps < 0:
            raise KerasaeError(
                f"anneal_steps must be an integer >= 0 (training steps), got {anneal_steps!r}"
            )
        super().__init__(beta=1.0, **kwargs)
        self.gamma, self.c_min, self.c_max = float(gamma), float(c_min), float(c_max)
        self.anneal_steps = anneal_steps
        # saved with the weights and checkpoints: a loaded or resumed model goes on from
        # the capacity it reached; one count for all replicas, as the optimizer's
        self.capacity_step = self.add_weight(
            shape=(),
            dtype="int64",
            trainable=False,
            initializer="zeros",
            aggregation="only_first_replica",
            name="capacity_step",
        )

    def capacity(self):
        """C at the current step: c_min + (c_max - c_min) * min(1, step / anneal_steps)."""
        if not self.anneal_steps:
            return ops.convert_to_tensor(self.c_max, "float32")
        done = ops.cast(self.capacity_step, "float32") / float(self.anneal_steps)
        return self.c_min + (self.c_max - self.c_min) * ops.minimum(done, 1.0)

    def compute_losses(self, x, training=False):
        _, (nll, kl, _) = self._elbo_parts(x, training=training)
        rec, kl = ops.mean(nll), ops.mean(kl)
        capacity = ops.cast(self.capacity(), kl.dtype)
        return {
            "loss": rec + self.gamma * ops.abs(kl - capacity),
            "reconstruction": rec,
            "kl": kl,
            "capacity": capacity,
        }

    def after_step(self, x, outputs):
        self.capacity_step.assign_add(1)
