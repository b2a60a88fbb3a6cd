"""Adversarial terms on the latent: GAN cross-entropies (Goodfellow et al. 2014), the WGAN
critic loss and its gradient penalty (Gulrajani et al. 2017).
"""

import keras
import tensorflow as tf
from keras import ops

from kerasae.probability.likelihoods import flat_float


# ------------------------------------------- adversarial terms on the latent (AAE, WAE)
def discriminator_bce(logits_real, logits_fake):
    """Binary cross-entropy of a discriminator that labels real 1 and fake 0 (from logits).

    Its minimum over discriminators is 2 log 2 - 2 JS(real || fake) (Goodfellow et al. 2014).
    """
    real, fake = ops.cast(logits_real, "float32"), ops.cast(logits_fake, "float32")
    return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))


def generator_bce(logits_fake):
    """The non-saturating generator loss -E[log D(fake)]: strong gradients while D wins."""
    return ops.mean(ops.softplus(-ops.cast(logits_fake, "float32")))


def fake_bce(logits_fake):
    """-E[log(1 - D(fake))]: the fake half of `discriminator_bce` (vaegan's discriminator
    has two kinds of fake; its decoder maximises this, the minimax game's generator)."""
    return ops.mean(ops.softplus(ops.cast(logits_fake, "float32")))


def critic_loss(scores_real, scores_fake):
    """The WGAN critic loss E[f(fake)] - E[f(real)] (minimised; its negative estimates W1)."""
    return ops.mean(ops.cast(scores_fake, "float32")) - ops.mean(ops.cast(scores_real, "float32"))


def gradient_penalty(critic, real, fake, seed=None):
    """WGAN-GP (Gulrajani et al. 2017): E[(|grad f(x_t)| - 1)^2] on interpolates.

    x_t = t real + (1 - t) fake with t ~ U[0, 1] per example: uniform, so that the penalty
    covers the whole segment between the two distributions (a normal t, as in a popular
    example, puts interpolates outside it and mostly near the middle).
    """
    real, fake = ops.cast(real, "float32"), ops.cast(fake, "float32")
    shape = [ops.shape(real)[0]] + [1] * (len(real.shape) - 1)
    t = keras.random.uniform(shape, 0.0, 1.0, seed=seed)
    interpolates = t * real + (1.0 - t) * fake
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = ops.cast(critic(interpolates, training=True), "float32")
    grads = flat_float(tape.gradient(scores, interpolates))
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=-1) + 1e-12)
    return ops.mean(ops.square(norms - 1.0))
