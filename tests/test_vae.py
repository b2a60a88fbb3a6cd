"""vae / beta_vae and the TFP distribution layers: closed forms, gradients, training, saving."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasae
from kerasae.errors import KerasaeError
from kerasae.probability.gaussian import gaussian_kl
from kerasae.probability.layers import BernoulliLikelihood, GaussianLikelihood, GaussianPosterior

TINY = {"latent_dim": 2, "hidden_units": (16,), "filters": (4, 8)}


def tiny(name="vae", **kwargs):
    return kerasae.create_model(name, input_shape=(8, 8, 1), **{**TINY, **kwargs})


def closed_form_kl(mu, log_var):
    return 0.5 * np.sum(mu**2 + np.exp(log_var) - 1.0 - log_var, axis=-1)


def test_analytic_kl_equals_closed_form():
    rng = np.random.default_rng(0)
    mu, log_var = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    expected = closed_form_kl(mu, log_var)
    np.testing.assert_allclose(
        gaussian_kl(tf.constant(mu), tf.constant(log_var)), expected, rtol=1e-10
    )
    layer = GaussianPosterior()
    np.testing.assert_allclose(
        layer.kl(tf.constant(mu, "float32"), tf.constant(log_var, "float32")), expected, rtol=1e-5
    )


def test_monte_carlo_kl_is_unbiased():
    mu = tf.constant([[0.5, -1.0, 2.0]], "float64")
    log_var = tf.constant([[-1.0, 0.3, 0.0]], "float64")
    layer = GaussianPosterior(kl_method="mc")
    draws = 20_000
    m, lv = tf.repeat(mu, draws, axis=0), tf.repeat(log_var, draws, axis=0)
    estimate = np.mean(layer.kl(m, lv, layer.sample(m, lv, seed=(3, 4))))
    np.testing.assert_allclose(estimate, closed_form_kl(mu.numpy(), log_var.numpy())[0], rtol=0.03)


def test_reparameterized_sample_gradient_matches_finite_difference():
    """z = mu + exp(log_var / 2) * eps: the draw is differentiable in both parameters."""
    layer = GaussianPosterior()
    mu = tf.constant([[0.3, -0.7]], "float64")
    log_var = tf.constant([[-0.5, 0.2]], "float64")

    def f(m, lv):  # any smooth function of the draw; the seed fixes eps
        return tf.reduce_sum(tf.sin(layer.sample(m, lv, seed=(7, 0))) ** 2)

    with tf.GradientTape() as tape:
        tape.watch([mu, log_var])
        value = f(mu, log_var)
    grads = tape.gradient(value, [mu, log_var])
    h = 1e-6
    for k, (_param, grad) in enumerate(zip((mu, log_var), grads)):
        for j in range(2):
            step = tf.one_hot([[j]], 2, dtype="float64")[0] * h
            plus = f(mu + step, log_var) if k == 0 else f(mu, log_var + step)
            minus = f(mu - step, log_var) if k == 0 else f(mu, log_var - step)
            np.testing.assert_allclose(grad[0, j], (plus - minus) / (2 * h), rtol=1e-6)
        assert np.all(np.abs(grad.numpy()) > 1e-4)


def test_elbo_gradient_reaches_encoder_through_the_sample(digits):
    """With beta = 0 the z_log_var head is reached only through the reparameterized draw;
    its gradient must be non-zero and match a finite difference (float64 model)."""
    policy, floatx = keras.config.dtype_policy(), keras.config.floatx()
    keras.config.set_floatx("float64")  # also the dtype of the networks' Input layers
    keras.config.set_dtype_policy("float64")
    try:
        model = tiny(beta=0.0)
        x = tf.constant(digits[0][:16], "float64")
        bias = model.encoder.get_layer("z_log_var").bias

        def loss():
            return tf.reduce_mean(model.negative_elbo(x, seed=(5, 5))[2])

        with tf.GradientTape() as tape:
            value = loss()
        grad = tape.gradient(value, bias).numpy()
        assert np.all(np.abs(grad) > 1e-6), grad
        h, start = 1e-5, bias.numpy()
        for j in range(len(start)):
            bias.assign(start + h * np.eye(len(start))[j])
            plus = float(loss())
            bias.assign(start - h * np.eye(len(start))[j])
            minus = float(loss())
            bias.assign(start)
            np.testing.assert_allclose(grad[j], (plus - minus) / (2 * h), rtol=1e-4, atol=1e-8)
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def test_likelihoods_equal_their_closed_forms():
    rng = np.random.default_rng(1)
    x = rng.random((4, 3, 3, 1)).astype("float32")
    logits = rng.normal(size=(4, 3, 3, 1)).astype("float32")
    expected = np.sum(np.logaddexp(0, logits) - x * logits, axis=(1, 2, 3))
    np.testing.assert_allclose(BernoulliLikelihood()(x, logits), expected, rtol=1e-5)
    mean = 1 / (1 + np.exp(-logits))
    s = 0.2
    expected = np.sum(
        0.5 * ((x - mean) / s) ** 2 + np.log(s) + 0.5 * np.log(2 * np.pi), axis=(1, 2, 3)
    )
    np.testing.assert_allclose(GaussianLikelihood(scale=s)(x, mean), expected, rtol=1e-5)


@pytest.mark.parametrize("architecture", ["mlp", pytest.param("conv", marks=pytest.mark.slow)])
def test_training_lowers_negative_elbo_and_samples_are_images(digits, architecture):
    x = digits[0][:256]
    model = tiny(architecture=architecture, latent_dim=4)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = float(np.mean(model.score(x, samples=2)))
    history = model.fit(x, epochs=4, batch_size=32, verbose=0).history
    after = float(np.mean(model.score(x, samples=2)))
    assert after < before - 1.0, (before, after)
    assert set(history) >= {"loss", "reconstruction", "kl"}
    assert "beta" not in history  # a constant KL weight is not logged (a flat chart)
    np.testing.assert_allclose(
        np.array(history["loss"]),
        np.array(history["reconstruction"]) + np.array(history["kl"]),
        rtol=1e-4,
    )  # beta = 1: loss is the negative ELBO
    samples = model.sample(16, seed=0)
    assert samples.shape == (16, 8, 8, 1)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_array_equal(samples, model.sample(16, seed=0))


def test_export_contract(digits):
    model = tiny("beta_vae")
    assert model.beta == 4.0
    x = digits[0][:6]
    assert [t.name.split("/")[0] for t in model.encoder.outputs] == [
        "z_mean",
        "z_log_var",
    ] or model.encoder.output_names == ["z_mean", "z_log_var"]
    mean, log_var = model.encoder(x)
    np.testing.assert_allclose(model.encode(x), mean, rtol=1e-6)
    np.testing.assert_allclose(model.encode_distribution(x)[1], log_var, rtol=1e-6)
    np.testing.assert_allclose(model.reconstruct(x), model.decoder(mean), rtol=1e-6)
    np.testing.assert_array_equal(model.score(x), model.score(x))  # seeded: repeatable
    assert not any("tfp" in type(layer).__module__ for layer in model.encoder.layers)


@pytest.mark.slow
def test_save_load_keeps_beta_and_learned_scale(digits, tmp_path):
    x = digits[0][:64]
    model = tiny("beta_vae", likelihood="gaussian", learn_scale=True, kl="mc")
    model.compile()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    model.beta_variable.assign(2.5)  # mid-annealing
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kerasae.load_model(str(path))
    assert float(loaded.beta_variable) == 2.5
    assert json.loads(json.dumps(loaded.get_config())) == json.loads(
        json.dumps(model.get_config())
    )
    assert float(loaded.likelihood_layer.log_scale) == float(model.likelihood_layer.log_scale)
    assert float(model.likelihood_layer.log_scale) != pytest.approx(np.log(0.1))  # it learned
    np.testing.assert_array_equal(loaded.score(x), model.score(x))


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"likelihood": "poisson"}, "likelihood must be one of"),
        ({"kl": "exact"}, "kl must be one of"),
        ({"beta": -1.0}, "beta must be"),
        ({"likelihood": "gaussian", "likelihood_scale": 0.0}, "likelihood_scale must be positive"),
    ],
)
def test_bad_parameters_are_user_errors(kwargs, words):
    with pytest.raises(KerasaeError, match=words):
        tiny(**kwargs)
