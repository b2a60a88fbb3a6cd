"""Probability (core layer): every likelihood, divergence and penalty, each written once.

    likelihoods.py  reconstruction losses; Bernoulli and Gaussian negative log-likelihoods
    gaussian.py     Gaussian log-densities (posterior, prior, mixtures) and the Gaussian KL
    layers.py       Keras layers around them: the posterior draw and the decoder likelihood
    kernels.py      MMD kernels; adversarial.py GAN and WGAN terms; regularizers.py the
                    Jacobian and sparsity penalties; divergences.py estimators on samples
    ssim.py         SSIM and MS-SSIM (the perceptual reconstruction of msssim_vae)
    von_mises_fisher.py, poincare.py  the sphere's vMF and the Poincaré ball's wrapped normal

The formulas training and `scorer.onnx` share are plain ops tf2onnx converts;
tensorflow-probability stays where it adds something (the posterior's reparameterized
draw). May import the base only.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.probability.likelihoods: reconstruction_loss per_example_error per_example_bce
    kerasae.probability.gaussian: gaussian_kl posterior_log_prob standard_normal_log_prob
        mixture_log_prob pairwise_log_prob
    kerasae.probability.divergences: mmd kl_gaussian jsd_from_logits w1_from_scores
        tc_from_logits gaussian_total_correlation
    kerasae.probability.ssim: ms_ssim
""",
)
