"""Divergence estimators against closed forms: MMD, KL, JS from a discriminator, W1 from a
critic."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.probability import adversarial, divergences


def test_mmd_is_unbiased_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(0)
    same = [
        divergences.mmd(rng.normal(size=(100, 2)), rng.normal(size=(100, 2))) for _ in range(12)
    ]
    shifted = divergences.mmd(rng.normal(size=(100, 2)), rng.normal(1.0, 1.0, size=(100, 2)))
    assert abs(np.mean(same)) < 0.01
    assert min(same) < 0  # unbiased: no positive floor (a biased V-statistic is always > 0)
    assert shifted > 10 * max(abs(v) for v in same)
    for kernel in ("imq", "rbf"):  # tensors in, tensors out; both kernels see the shift
        a = tf.constant(rng.normal(size=(100, 3)), tf.float32)
        value = divergences.mmd(a, a + 2.0, kernel=kernel)
        assert tf.is_tensor(value) and float(value) > 0.5


def test_mmd_reports_bad_inputs():
    with pytest.raises(KerasaeError, match="same dimension"):
        divergences.mmd(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(KerasaeError, match="kernel"):
        divergences.mmd(np.zeros((5, 2)), np.zeros((5, 2)), kernel="laplace")


def test_kl_gaussian_closed_form_matches_monte_carlo():
    mu, logvar = np.array([0.5, -1.0]), np.array([0.2, -0.7])
    closed = divergences.kl_gaussian(mu, logvar)
    by_hand = sum(0.5 * (math.exp(lv) + m * m - 1 - lv) for m, lv in zip(mu, logvar))
    assert closed == pytest.approx(by_hand, rel=1e-5)
    rng = np.random.default_rng(0)
    x = mu + np.exp(0.5 * logvar) * rng.normal(size=(200_000, 2))

    def log_normal(z, m, lv):
        return np.sum(-0.5 * (np.log(2 * np.pi) + lv + (z - m) ** 2 / np.exp(lv)), axis=-1)

    mc = divergences.kl_monte_carlo(
        x, lambda z: log_normal(z, mu, logvar), lambda z: log_normal(z, 0.0, 0.0)
    )
    assert mc == pytest.approx(closed, abs=0.01)


def _train(net, loss_fn, p, q, steps, optimizer, batch=512, seed=0):
    @tf.function  # eager steps would dominate the test's time
    def step(real, fake):
        with tf.GradientTape() as tape:
            loss = loss_fn(real, fake)
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        step(tf.constant(p(rng, batch), tf.float32), tf.constant(q(rng, batch), tf.float32))


def _mlp(units):
    return keras.Sequential(
        [keras.Input((1,))]
        + [keras.layers.Dense(u, activation="relu") for u in units]
        + [keras.layers.Dense(1)]
    )


def test_trained_discriminator_estimates_js_of_two_gaussians():
    xs = np.linspace(-12, 13, 200_001)
    p = np.exp(-(xs**2) / 2) / math.sqrt(2 * math.pi)
    q = np.exp(-((xs - 1) ** 2) / 2) / math.sqrt(2 * math.pi)
    m = (p + q) / 2
    exact = 0.5 * np.trapezoid(p * np.log(p / m) + q * np.log(q / m), xs)  # ~0.1 nats

    disc = _mlp((16,))
    _train(
        disc,
        lambda r, f: adversarial.discriminator_bce(disc(r), disc(f)),
        lambda rng, n: rng.normal(0, 1, (n, 1)),
        lambda rng, n: rng.normal(1, 1, (n, 1)),
        steps=400,
        optimizer=keras.optimizers.Adam(1e-2),
    )
    rng = np.random.default_rng(1)
    estimate = divergences.jsd_from_discriminator(
        disc, rng.normal(0, 1, (50_000, 1)), rng.normal(1, 1, (50_000, 1))
    )
    assert abs(estimate - exact) < 0.05, (estimate, exact)


def test_gradient_penalty_closed_form_for_a_linear_critic():
    rng = np.random.default_rng(0)
    real = tf.constant(rng.normal(size=(64, 3)), tf.float32)
    fake = tf.constant(rng.normal(2.0, 1.0, size=(64, 3)), tf.float32)
    for slope, expected in ((1.0, 0.0), (2.0, 1.0), (0.5, 0.25)):
        w = tf.constant([[slope], [0.0], [0.0]])
        gp = adversarial.gradient_penalty(lambda z, training=False, w=w: z @ w, real, fake, seed=0)
        assert float(gp) == pytest.approx(expected, abs=1e-4)


@pytest.mark.slow
def test_gradient_penalty_critic_estimates_w1_of_shifted_gaussians():
    critic = _mlp((32, 32))

    def loss(real, fake):
        return adversarial.critic_loss(
            critic(real), critic(fake)
        ) + 10.0 * adversarial.gradient_penalty(critic, real, fake)

    _train(
        critic,
        loss,
        lambda rng, n: rng.normal(0, 1, (n, 1)),
        lambda rng, n: rng.normal(2, 1, (n, 1)),
        steps=400,
        optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5, beta_2=0.9),
        batch=256,
    )
    rng = np.random.default_rng(1)
    w1 = divergences.w1_from_critic(
        critic, rng.normal(0, 1, (50_000, 1)), rng.normal(2, 1, (50_000, 1))
    )
    assert abs(w1 - 2.0) < 0.2, w1  # W1 of a pure shift is the shift


def test_gaussian_total_correlation_matches_the_closed_form():
    """Independent codes: ~0 nats; one shared factor (equicorrelation r): the Gaussian
    closed form -(log det R) / 2 with R = (1 - r) I + r 11^T."""
    from kerasae.probability.divergences import gaussian_total_correlation

    rng = np.random.default_rng(0)
    n, d = 20000, 16
    assert abs(gaussian_total_correlation(rng.standard_normal((n, d)))) < 0.02
    shared = np.repeat(rng.standard_normal((n, 1)), d, axis=1) + 0.5 * rng.standard_normal((n, d))
    r = 1 / 1.25
    exact = -0.5 * ((d - 1) * np.log(1 - r) + np.log(1 + (d - 1) * r))
    assert gaussian_total_correlation(shared) == pytest.approx(exact, rel=0.03)
    with pytest.raises(KerasaeError, match="more samples than dimensions"):
        gaussian_total_correlation(rng.standard_normal((10, 16)))
