"""Latent samplers (core layer): how any model with an encoder generates.

A deterministic autoencoder has no prior, but a density fitted to its training codes after
the fact makes it generative (Ghosh et al., "From Variational to Deterministic
Autoencoders", ICLR 2020). One registry, like models:

    sampler = create_sampler("gmm", n_components=10).fit(model, x_train, seed=0)
    images = sampler.generate(model, 64, seed=1)      # model.decode(sampler.sample_latent(...))

    base.py         LatentSampler, the registry, create_sampler
    arrays.py       prior (the model's own), gaussian, gmm: numbers kerasae-runtime draws
    two_stage.py    a second VAE over the codes (Dai and Wipf 2019)
    code_batches.py the codes standardised and batched, what a learned sampler trains on
    flows.py        maf and iaf: MADE flows over the codes (Papamakarios et al. 2017)
    pixelcnn.py     an autoregressive prior over a vq_vae's code grid (pixelcnn_net.py)
    langevin_sampling.py  Langevin sampling on a denoiser's score (dae, sdae, ncsn)

Every draw is plain numpy (`default_rng(seed)`), so kerasae-runtime reproduces it from the
export. May import models, nets, probability and data, and the base; never runs,
evaluation, export or the CLI (a run's samplers are kerasae.runs.samplers).
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.samplers.base: LatentSampler register_sampler create_sampler sampler_names
        no_sampler_message SAMPLERS SAMPLERS_DIR META ARRAYS
    kerasae.samplers.arrays: PriorSampler GaussianSampler GMMSampler
    kerasae.samplers.two_stage: TwoStageSampler
    kerasae.samplers.flows: MAFSampler IAFSampler
    kerasae.samplers.pixelcnn: PixelCNNSampler
    kerasae.samplers.langevin_sampling: langevin annealed_langevin score_estimate
""",
)
