"""The Hamiltonian families (hvae, rhvae): their flows and their importance weights.

A linear-Gaussian model (z ~ N(0, I), x | z ~ N(W z + b, s^2 I)) has an exact log p(x):
the extended-space weights must estimate it, whatever the step size and temperature. The
leapfrog is checked reversible and volume-preserving against a finite-difference Jacobian,
the tempering's scaling cancels the momentum's initial one (unit Jacobian of the whole
map), and the Riemannian metric's closed-form gradients against autodiff.
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import multivariate_normal

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.evaluation.likelihood import log_likelihood
from kerasae.probability.riemannian import KernelMetric, lower_triangular

TINY = {"input_shape": (8, 8, 1), "latent_dim": 2, "hidden_units": (16,)}


def linear_gaussian(name, n=100, broaden=0.4, **kwargs):
    """(model, x, exact log p(x)): `name`'s family with a linear encoder and decoder."""
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(2, 5)).astype("float32")
    bias = rng.normal(size=5).astype("float32")
    scale = 0.5
    model = kerasae.create_model(
        name,
        input_shape=(5,),
        latent_dim=2,
        hidden_units=(4,),
        likelihood="gaussian",
        likelihood_scale=scale,
        **kwargs,
    )
    w = kernel.T
    cov = np.linalg.inv(np.eye(2) + w.T @ w / scale**2)
    gain = w @ cov / scale**2
    x_in = keras.Input((5,))
    heads = [keras.layers.Dense(2, name=n_)(x_in) for n_ in ("z_mean", "z_log_var")]
    encoder = keras.Model(x_in, heads)
    encoder.get_layer("z_mean").set_weights([gain, -bias @ gain])
    encoder.get_layer("z_log_var").set_weights([np.zeros((5, 2)), np.log(np.diag(cov)) + broaden])
    z_in = keras.Input((2,))
    decoder = keras.Model(z_in, keras.layers.Dense(5, name="x_hat")(z_in))
    decoder.get_layer("x_hat").set_weights([kernel, bias])
    model.set_networks(encoder, decoder)
    z = rng.standard_normal((n, 2))
    x = (z @ kernel + bias + scale * rng.standard_normal((n, 5))).astype("float32")
    marginal = multivariate_normal(bias, w @ w.T + scale**2 * np.eye(5))
    return model, x, marginal.logpdf(x)


def numerical_jacobian(f, v, h=1e-3):
    """Central differences of f: R^n -> R^n at v (float64 columns)."""
    cols = []
    for i in range(len(v)):
        step = np.zeros_like(v)
        step[i] = h
        cols.append((f(v + step) - f(v - step)) / (2 * h))
    return np.stack(cols, axis=1)


# ------------------------------------------------------------------------------ hvae
@pytest.mark.slow
def test_hvae_weights_estimate_the_exact_log_likelihood():
    model, x, exact = linear_gaussian("hvae", n_lf=3, eps_lf=0.1, beta_zero=0.5)
    result = log_likelihood(model, x, k=500, seed=0)
    # Monte Carlo error per example: up to ~0.15 nats at k = 500 (the proposal is broad)
    np.testing.assert_allclose(result["log_px"], exact, atol=0.3)
    assert abs(result["mean"] - exact.mean()) < 0.02
    # the flow's ELBO is a bound: below log p(x), example by example
    assert np.all(result["elbo"] < exact + 1e-3) and exact.mean() - result["elbo_mean"] > 0.01
    # the loss is the mean negative weight of its draws
    nll, rest, total = (t.numpy() for t in model.negative_elbo(tf.constant(x), seed=(1, 2)))
    np.testing.assert_allclose(total, nll + rest, rtol=1e-6)
    log_w = model.log_weights(tf.constant(x), k=1, seed=(1, 2)).numpy()[:, 0]
    np.testing.assert_allclose(-log_w, total, rtol=1e-5, atol=1e-4)


def _leapfrogs(model, x, n):
    """(z, rho) -> n leapfrog steps (no tempering) of `model` at the example x."""
    eps = float(model.step_size.numpy())

    def f(v):
        z, rho = tf.constant(v[None, :2], "float32"), tf.constant(v[None, 2:], "float32")
        _, grad = model.log_joint(x, z)
        for _ in range(n):
            z, rho, _, grad = model.leapfrog(x, z, rho, grad, eps)
        return np.concatenate([z.numpy()[0], rho.numpy()[0]]).astype("float64")

    return f


def test_hvae_leapfrog_is_reversible_and_preserves_volume(digits):
    model = kerasae.create_model("hvae", eps_lf=0.05, **TINY)
    x = tf.constant(digits[0][:1])
    forward = _leapfrogs(model, x, 3)
    start = np.array([0.3, -0.2, 0.7, 1.1])
    end = forward(start)
    assert np.abs(end - start).max() > 0.05  # it moved
    back = forward(end * np.array([1, 1, -1, -1]))  # flip the momentum, run again
    np.testing.assert_allclose(back * np.array([1, 1, -1, -1]), start, atol=1e-4)
    det = np.linalg.det(numerical_jacobian(forward, start, h=2e-3))
    np.testing.assert_allclose(det, 1.0, atol=2e-3)


@pytest.mark.slow
def test_hvae_whole_map_has_unit_jacobian(digits):
    """(z_0, gamma) -> (z_K, rho_K): rho_0 = gamma / sqrt(beta_0) and the tempering cancel."""
    model = kerasae.create_model("hvae", n_lf=2, eps_lf=0.05, beta_zero=0.4, **TINY)
    x = tf.constant(digits[0][:1])

    def f(v):
        z, rho, _ = model.flow(x, tf.constant(v[None, :2], "float32"), tf.constant(v[None, 2:]))
        return np.concatenate([z.numpy()[0], rho.numpy()[0]]).astype("float64")

    jac = numerical_jacobian(lambda v: f(v.astype("float32")), np.array([0.1, 0.2, -0.5, 0.9]))
    np.testing.assert_allclose(np.linalg.det(jac), 1.0, atol=3e-3)
    assert np.abs(jac - np.eye(4)).max() > 0.05  # not the identity map


def test_hvae_learns_its_step_size_and_refuses_bad_arguments(digits):
    model = kerasae.create_model("hvae", **TINY)
    assert {w.path.split("/")[-1] for w in model.trainable_weights} >= {"eps_lf", "beta_zero_sqrt"}
    x = tf.constant(digits[0][:16])
    with tf.GradientTape() as tape:
        loss = model.compute_losses(x, training=True)["loss"]
    grads = tape.gradient(loss, [model.step_size, model.beta_zero_sqrt])
    assert all(g is not None and float(g) != 0 for g in grads)
    fixed = kerasae.create_model("hvae", learn_eps_lf=False, learn_beta_zero=False, **TINY)
    assert all(w is not fixed.step_size for w in fixed.trainable_weights)
    for bad, match in (
        ({"n_lf": 0}, "n_lf"),
        ({"eps_lf": -1.0}, "eps_lf"),
        ({"beta_zero": 1.5}, "beta_zero"),
    ):
        with pytest.raises(KerasaeError, match=match) as info:
            kerasae.create_model("hvae", **bad, **TINY)
        assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- rhvae
def test_metric_and_its_closed_form_gradients_match_numpy_and_autodiff():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(6, 3)).astype("float32")
    chol = np.tril(rng.normal(size=(6, 3, 3))).astype("float32")
    m = chol @ chol.transpose(0, 2, 1)
    z = tf.constant(rng.normal(size=(4, 3)).astype("float32"))
    mask = np.array([1, 1, 1, 1, 0, 1], "float32")
    metric = KernelMetric(c, m, temperature=1.5, regularization=0.01, mask=mask)
    w = np.exp(-(((z.numpy()[:, None] - c[None]) ** 2).sum(-1)) / 1.5**2) * mask
    expected = np.einsum("bn,njk->bjk", w, m) + 0.01 * np.eye(3)
    np.testing.assert_allclose(metric.inverse(z), expected, rtol=1e-5, atol=1e-5)
    rho = tf.constant(rng.normal(size=(4, 3)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        inv = metric.inverse(z)
        quad = tf.einsum("bj,bjk,bk->b", rho, inv, rho)
        log_det = tf.linalg.logdet(inv)
    outer = rho[:, :, None] * rho[:, None, :]
    np.testing.assert_allclose(
        metric.inner_gradient(z, outer), tape.gradient(quad, z), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        metric.inner_gradient(z, tf.linalg.inv(inv)),
        tape.gradient(log_det, z),
        rtol=1e-3,
        atol=1e-4,
    )
    diag, lower = tf.constant([[0.1, -0.2, 0.3]]), tf.constant([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(
        lower_triangular(diag, lower, 3)[0],
        [[math.exp(0.1), 0, 0], [1.0, math.exp(-0.2), 0], [2.0, 3.0, math.exp(0.3)]],
        rtol=1e-6,
    )


def _bank(model, rng, n=8):
    """Fill the inference metric's bank by hand (after_step, as training does)."""
    d = model.latent_dim
    chol = np.tril(rng.normal(0, 0.7, size=(n, d, d))).astype("float32")
    outputs = {
        "centroids": tf.constant(rng.normal(size=(n, d)).astype("float32")),
        "matrices": tf.constant(chol @ chol.transpose(0, 2, 1) + 0.2 * np.eye(d, dtype="float32")),
    }
    model.after_step(None, outputs)
    return outputs


@pytest.mark.slow
def test_rhvae_weights_estimate_the_exact_log_likelihood():
    model, x, exact = linear_gaussian(
        "rhvae", n=60, n_lf=2, eps_lf=0.05, beta_zero=0.5, metric_size=8, fixed_point_steps=8
    )
    _bank(model, np.random.default_rng(1))
    assert int(model.bank_written.numpy()) == 8
    result = log_likelihood(model, x, k=400, seed=0)
    np.testing.assert_allclose(result["log_px"], exact, atol=0.15)
    assert abs(result["mean"] - exact.mean()) < 0.03
    assert np.all(result["elbo"] < exact + 1e-3)


@pytest.mark.slow
def test_rhvae_generalized_leapfrog_is_reversible_and_nearly_volume_preserving(digits):
    model = kerasae.create_model("rhvae", eps_lf=0.05, metric_size=8, fixed_point_steps=12, **TINY)
    _bank(model, np.random.default_rng(2))
    x, metric = tf.constant(digits[0][:1]), model.bank_metric()
    eps = tf.constant(0.05)

    def f(v):
        z, rho = tf.constant(v[None, :2], "float32"), tf.constant(v[None, 2:], "float32")
        state = model.potential_gradient(x, z, metric, False)
        for _ in range(2):
            z, rho, state = model.generalized_leapfrog(x, z, rho, state, metric, eps)
        return np.concatenate([z.numpy()[0], rho.numpy()[0]]).astype("float64")

    start = np.array([0.2, -0.4, 0.8, 0.5])
    end = f(start)
    flip = np.array([1, 1, -1, -1])
    np.testing.assert_allclose(f(end * flip) * flip, start, atol=1e-3)
    np.testing.assert_allclose(np.linalg.det(numerical_jacobian(f, start, h=2e-3)), 1.0, atol=5e-3)


@pytest.mark.slow
def test_rhvae_bank_sampler_prior_and_bad_arguments(digits):
    model = kerasae.create_model("rhvae", metric_size=4, **TINY)
    first = _bank(model, np.random.default_rng(3), n=3)
    second = _bank(model, np.random.default_rng(4), n=3)  # wraps around the ring
    assert int(model.bank_written.numpy()) == 6
    bank = model.bank_centroids.numpy()
    np.testing.assert_allclose(bank[[2, 3, 0, 1]], [first["centroids"][2], *second["centroids"]])
    a = model.sample(3, seed=0, mcmc_steps=3, n_lf=2)
    assert a.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(a, model.sample(3, seed=0, mcmc_steps=3, n_lf=2))
    assert model.prior_spec()["kind"] == "standard_normal"
    losses = model.compute_losses(tf.constant(digits[0][:8]), training=True)
    assert losses["matrices"].shape == (8, 2, 2) and losses["centroids"].shape == (8, 2)
    for bad in ({"temperature": 0}, {"metric_size": 0}, {"fixed_point_steps": 1.5}):
        with pytest.raises(KerasaeError) as info:
            kerasae.create_model("rhvae", **bad, **TINY)
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------ fits and the CLI
@pytest.mark.slow
@pytest.mark.parametrize("name", ["hvae", "rhvae"])
def test_short_fit_lowers_the_loss(name, digits):
    x = digits[0][:512]
    keras.utils.set_random_seed(0)
    model = kerasae.create_model(name, input_shape=x.shape[1:], latent_dim=4, hidden_units=(64,))
    model.compile()
    before = model.evaluate(x, batch_size=128, verbose=0, return_dict=True)["loss"]
    model.fit(x, epochs=4, batch_size=64, verbose=0)
    after = model.evaluate(x, batch_size=128, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(after) and after < before - 1.0
    if name == "rhvae":  # the bank is full of the last training codes
        assert int(model.bank_written.numpy()) >= model.metric_size


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hvae", "rhvae"])
def test_cli_trains_and_evaluates_the_log_likelihood(name, tmp_path, capsys):
    out = tmp_path / name
    args = ["train", "--model", name, "--dataset", "digits", "--epochs", "2"]
    assert main([*args, "--latent-dim", "4", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["model"] == name
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "reconstruction", "kl"} <= set(header)
    assert (out / "model.keras").exists()
    capsys.readouterr()
    assert main(["evaluate", str(out), "--log-likelihood", "--k", "20", "--json"]) == 0
    ll = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["log_likelihood"]
    assert ll["k"] == 20 and ll["elbo"] <= ll["nats"] < 0
