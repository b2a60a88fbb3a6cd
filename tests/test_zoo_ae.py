"""factor_vae, rae and sparse_ae: their estimators and penalties against closed forms, the
RAE's ex-post Gaussian sampler, and each family through `kerasae train` (slow)."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.probability import divergences, regularizers
from kerasae.samplers.arrays import model_prior

SHAPE = (8, 8, 1)


# ------------------------------------------------------------------ factor_vae
def test_permute_dims_keeps_each_marginal_and_breaks_dependence():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2000, 1)).astype("float32")
    z = np.concatenate([u, 2.0 * u + 1.0, -u], axis=1)  # perfectly dependent columns
    permuted = np.asarray(divergences.permute_dims(tf.constant(z), seed=3))
    for d in range(3):  # the same multiset of values in every dimension
        np.testing.assert_array_equal(np.sort(permuted[:, d]), np.sort(z[:, d]))
    corr = np.corrcoef(permuted.T)
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.1), corr
    # each dimension is shuffled on its own, not the rows as a whole
    assert not np.allclose(permuted[:, 1], 2.0 * permuted[:, 0] + 1.0)


def test_tc_estimate_is_the_mean_logit():
    logits = np.array([0.5, -1.0, 3.0], dtype="float32")
    assert divergences.tc_from_logits(logits) == pytest.approx(logits.mean())
    # log D / (1 - D) with D = sigmoid(logit) is the logit itself
    d = 1.0 / (1.0 + np.exp(-logits))
    assert np.mean(np.log(d / (1 - d))) == pytest.approx(logits.mean(), rel=1e-5)


def _trained_tc(model, codes, steps=300):
    """The TC estimate of `model`'s discriminator after `steps` steps on `codes`."""
    codes = tf.constant(codes)
    step = tf.function(lambda: model._discriminator_step(codes))
    for _ in range(steps):
        step()
    return float(divergences.tc_from_logits(model.discriminator(codes)))


@pytest.mark.slow
def test_tc_estimate_separates_correlated_from_independent_codes():
    rng = np.random.default_rng(0)
    n = 512
    independent = rng.normal(size=(n, 2)).astype("float32")
    u = rng.normal(size=(n, 1))
    correlated = np.concatenate([u, u + 0.1 * rng.normal(size=(n, 1))], 1).astype("float32")
    true_tc = -0.5 * np.log(1 - np.corrcoef(correlated.T)[0, 1] ** 2)  # Gaussian: ~2.3 nats
    estimates = []
    for codes in (independent, correlated):
        keras.utils.set_random_seed(0)
        model = kerasae.create_model(
            "factor_vae", input_shape=SHAPE, latent_dim=2, hidden_units=(8,), disc_units=(64, 64)
        )
        model.compile(disc_optimizer=keras.optimizers.Adam(3e-3, beta_1=0.5, beta_2=0.9))
        estimates.append(_trained_tc(model, codes))
    low, high = estimates
    assert abs(low) < 0.3, estimates
    assert 0.5 < high < true_tc + 0.5, (estimates, true_tc)


@pytest.mark.slow
def test_factor_vae_trains_logs_and_keeps_both_optimizers(digits, tmp_path):
    x = digits[0][:512]
    model = kerasae.create_model(
        "factor_vae",
        input_shape=SHAPE,
        latent_dim=4,
        hidden_units=(32,),
        disc_units=(32, 32),
        likelihood="gaussian",
        learn_scale=True,
    )
    model.compile()
    scale = float(model.likelihood_layer.log_scale.numpy())
    history = model.fit(x, epochs=3, batch_size=64, verbose=0).history
    assert {"loss", "reconstruction", "kl", "tc", "disc_loss"} <= set(history)
    assert history["loss"][-1] < history["loss"][0]
    assert all(np.isfinite(v).all() for v in history.values())
    # the VAE's optimizer trains everything but the discriminator: the learned scale too
    assert float(model.likelihood_layer.log_scale.numpy()) != scale
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kerasae.load_model(str(path))
    assert int(loaded.disc_optimizer.iterations) == int(model.disc_optimizer.iterations) > 0
    np.testing.assert_array_equal(loaded.encode(x[:8]), model.encode(x[:8]))
    np.testing.assert_array_equal(loaded.score(x[:8]), model.score(x[:8]))  # VAE's score
    assert loaded.sample(3, seed=0).shape == (3, *SHAPE)
    mean, log_var = loaded.encode_distribution(x[:8])
    assert mean.shape == log_var.shape == (8, 4)


def test_factor_vae_refuses_bad_parameters():
    with pytest.raises(KerasaeError, match="gamma"):
        kerasae.create_model("factor_vae", input_shape=SHAPE, gamma=-1.0)
    with pytest.raises(KerasaeError, match="n_critic"):
        kerasae.create_model("factor_vae", input_shape=SHAPE, n_critic=0)


# ------------------------------------------------------------------ rae
def _rae(**params):
    return kerasae.create_model(
        "rae", input_shape=SHAPE, latent_dim=3, architecture="mlp", hidden_units=(32,), **params
    )


@pytest.mark.slow
def test_rae_samples_only_after_fit_from_the_fitted_gaussian(digits, tmp_path):
    x = digits[0][:600]
    model = _rae()
    assert not model.generative
    with pytest.raises(KerasaeError, match="not been fitted"):
        model.sample(4)
    model.compile()
    model.fit(x, epochs=2, batch_size=64, verbose=0)
    assert model.generative

    codes = model.encode(x).astype("float64")
    mean, tril = model.latent_mean.numpy(), model.latent_scale_tril.numpy()
    np.testing.assert_allclose(mean, codes.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(tril @ tril.T, np.cov(codes, rowvar=False), rtol=1e-3, atol=1e-5)
    assert int(model.latent_count.numpy()) == len(x)

    draws = model.sample_latent(20000, seed=0)  # what sample() decodes
    cov = tril @ tril.T
    se = np.sqrt(np.diag(cov) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(draws, rowvar=False), cov, atol=0.05 * np.max(np.diag(cov)))
    np.testing.assert_array_equal(
        model.sample(5, seed=1), model.decode(model.sample_latent(5, seed=1))
    )

    path = tmp_path / "rae.keras"
    model.save(path)
    loaded = kerasae.load_model(str(path))
    assert loaded.generative
    np.testing.assert_array_equal(loaded.latent_scale_tril.numpy(), tril)
    np.testing.assert_array_equal(loaded.sample(6, seed=2), model.sample(6, seed=2))


def test_rae_gaussian_streams_over_a_dataset_like_an_array(digits):
    from kerasae.data.pipeline import make_tf_dataset

    x = digits[0][:300]
    model = _rae()
    model.fit_latent_gaussian(x)
    mean, tril = model.latent_mean.numpy().copy(), model.latent_scale_tril.numpy().copy()
    model.fit_latent_gaussian(make_tf_dataset(x, 64, shuffle=True))
    np.testing.assert_allclose(model.latent_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.latent_scale_tril.numpy(), tril, rtol=1e-4, atol=1e-6)


def test_rae_manifest_prior_is_the_fitted_gaussian(digits):

    model = _rae()
    assert model.prior_spec is None  # unfitted: the exporter fits its own, as for any AE
    model.fit_latent_gaussian(digits[0][:200])
    prior = model_prior(model)
    assert prior["kind"] == "gaussian" and prior["n_codes"] == 200
    np.testing.assert_allclose(prior["scale_tril"], model.latent_scale_tril.numpy())


def test_jacobian_penalty_closed_form_for_a_linear_map():
    dense = keras.layers.Dense(5)
    z = tf.random.normal((7, 3))
    dense(z)
    kernel = dense.kernel.numpy()
    # J = W^T at every z: the mean over outputs of ||dD_i/dz||^2 is ||W||_F^2 / 5
    exact = (kernel**2).sum() / 5
    assert float(regularizers.jacobian_penalty(dense, z)) == pytest.approx(exact, rel=1e-5)
    # the random-projection estimate RAE trains with is unbiased: E ||J u||^2 = ||J||_F^2
    estimate = float(regularizers.jacobian_penalty(dense, z, projections=4000, seed=0))
    assert estimate == pytest.approx(exact, rel=0.05)


@pytest.mark.slow
def test_rae_gp_penalty_matches_finite_differences(digits):
    model = _rae(regularizer="gp", activation="tanh")  # smooth: no ReLU kinks for the FD
    model.compile()
    model.fit(digits[0][:256], epochs=1, batch_size=64, verbose=0)  # off the initialisation
    z = model.encode(digits[0][:4]).astype("float64")
    got = float(regularizers.jacobian_penalty(model.decoder, tf.constant(z, "float32")))
    eps, n_out = 3e-3, int(np.prod(SHAPE))
    total = 0.0
    for k in range(z.shape[1]):
        step = np.zeros_like(z)
        step[:, k] = eps
        column = (
            model.decode((z + step).astype("float32")).astype("float64")
            - model.decode((z - step).astype("float32"))
        ) / (2 * eps)
        total += np.sum(column**2)
    assert got == pytest.approx(total / (len(z) * n_out), rel=2e-2)
    out = model.compute_losses(tf.constant(digits[0][:4]))
    assert float(out["decoder_penalty"]) == pytest.approx(got, rel=1e-4)


def test_rae_l2_penalty_is_the_decoder_kernels_squared_norm(digits):
    model = _rae(regularizer="l2")
    out = model.compute_losses(tf.constant(digits[0][:16]))
    kernels = [w.numpy() for w in model.decoder.trainable_weights if w.name == "kernel"]
    assert len(kernels) == 2  # one hidden layer and the output layer; biases are not decayed
    assert float(out["decoder_penalty"]) == pytest.approx(
        sum((k**2).sum() for k in kernels), rel=1e-5
    )
    z = model.encode(digits[0][:16])
    assert float(out["code_penalty"]) == pytest.approx(0.5 * (z**2).sum(1).mean(), rel=1e-5)


def test_rae_refuses_bad_parameters():
    with pytest.raises(KerasaeError, match="regularizer"):
        _rae(regularizer="l1")
    with pytest.raises(KerasaeError, match="beta"):
        _rae(beta=-1.0)


# ------------------------------------------------------------------ sparse_ae
def test_sparsity_kl_matches_the_closed_form():
    rho, rho_hat = 0.05, np.array([0.05, 0.2, 0.01, 0.5])
    expected = np.sum(rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat)))
    assert float(regularizers.sparsity_kl(rho, rho_hat)) == pytest.approx(expected, rel=1e-5)
    assert float(regularizers.sparsity_kl(rho, np.full(8, rho))) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(float(regularizers.sparsity_kl(rho, np.array([0.0, 1.0]))))  # dead units


@pytest.mark.slow
def test_sparse_ae_drives_mean_activation_to_rho(digits):
    x = digits[0]
    model = kerasae.create_model(
        "sparse_ae",
        input_shape=SHAPE,
        latent_dim=100,  # overcomplete
        rho=0.05,
        sparsity_weight=1.0,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = float(model.encode(x).mean())
    history = model.fit(x, epochs=5, batch_size=64, verbose=0).history
    after = float(model.encode(x).mean())
    assert before > 0.3 and abs(after - 0.05) < 0.025, (before, after)
    assert abs(history["mean_activation"][-1] - 0.05) < 0.025
    assert history["sparsity"][-1] < 0.1 * history["sparsity"][0]


def test_sparse_ae_refuses_bad_parameters():
    with pytest.raises(KerasaeError, match="rho"):
        kerasae.create_model("sparse_ae", input_shape=SHAPE, rho=1.5)


# ------------------------------------------------------------------ the CLI
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, columns",
    [
        ("factor_vae", {"tc", "disc_loss", "kl", "reconstruction", "val_tc"}),
        ("rae", {"code_penalty", "decoder_penalty", "val_decoder_penalty"}),
        ("sparse_ae", {"sparsity", "mean_activation", "val_mean_activation"}),
    ],
)
def test_cli_train(name, columns, tmp_path):
    out = tmp_path / "run"
    params = {
        "factor_vae": ["--param", "disc_units=(64,64)"],
        "rae": ["--param", "architecture=mlp"],
        "sparse_ae": [],
    }[name]
    assert (
        main(
            [
                "train",
                "--model",
                name,
                "--dataset",
                "digits",
                "--epochs",
                "2",
                *params,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert len(rows) == 2 and {"loss", *columns} <= set(rows[0])
    if name != "sparse_ae":  # generative: rae through the Gaussian fitted at the end of fit
        assert main(["sample", str(out), "-n", "16"]) == 0
        assert (out / "samples" / "samples.png").stat().st_size > 0
