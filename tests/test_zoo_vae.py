"""The variational zoo (iwae, beta_tcvae, info_vae, vamp) and the log-likelihood estimator.

Closed forms where there are any: a linear-Gaussian model whose log p(x) is exact checks
`kerasae.evaluation.likelihood`; each family's objective is checked against an identity (IWAE bound
>= ELBO on the same draws, beta-TC-VAE's three terms sum to the KL, InfoVAE's weights
reduce to the VAE and to the plain reconstruction, the VampPrior against a direct numpy
mixture). The slow tests train each family with the CLI and evaluate --log-likelihood.
"""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, norm

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.evaluation.likelihood import log_likelihood
from kerasae.models.registry import get_model_class
from kerasae.models.vae import VAE
from kerasae.probability.gaussian import gaussian_kl

TINY = {"hidden_units": (16,), "filters": (4, 8)}


def tiny(name, latent_dim=2, **kwargs):
    return kerasae.create_model(
        name, input_shape=(8, 8, 1), latent_dim=latent_dim, **{**TINY, **kwargs}
    )


# ------------------------------------------------------------ a model with an exact log p(x)
class LinearGaussianVAE(VAE):
    """z ~ N(0, I), x | z ~ N(W z + b, s^2 I), so p(x) = N(b, W W^T + s^2 I) (test only).

    The encoder gives the exact posterior mean and a diagonal, broadened variance: a
    proposal close to but not equal to p(z|x), so the ELBO is strictly below log p(x) and
    the importance weights vary (the estimate has something to converge).
    """

    def __init__(self, kernel, bias, scale, broaden=0.4):
        d, m = kernel.shape[1], kernel.shape[0]
        super().__init__(
            input_shape=(d,),
            latent_dim=m,
            hidden_units=(4,),
            likelihood="gaussian",
            likelihood_scale=scale,
        )
        w = kernel.T  # x = z @ kernel + bias, i.e. W = kernel^T
        cov = np.linalg.inv(np.eye(m) + w.T @ w / scale**2)
        gain = w @ cov / scale**2  # (d, m): mean^T = (x - b)^T W cov / s^2
        x = keras.Input((d,), name="x")
        heads = [keras.layers.Dense(m, name=n)(x) for n in ("z_mean", "z_log_var")]
        encoder = keras.Model(x, heads, name="encoder")
        encoder.get_layer("z_mean").set_weights([gain, -bias @ gain])
        encoder.get_layer("z_log_var").set_weights(
            [np.zeros((d, m)), np.log(np.diag(cov)) + broaden]
        )
        z = keras.Input((m,), name="z")
        decoder = keras.Model(z, keras.layers.Dense(d, name="x_hat")(z), name="decoder")
        decoder.get_layer("x_hat").set_weights([kernel, bias])
        self.set_networks(encoder, decoder)
        self.marginal = multivariate_normal(bias, w @ w.T + scale**2 * np.eye(d))


@pytest.fixture(scope="module")
def linear_gaussian():
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(2, 5)).astype("float32")
    bias = rng.normal(size=5).astype("float32")
    model = LinearGaussianVAE(kernel, bias, scale=0.5)
    z = rng.standard_normal((200, 2))
    x = (z @ kernel + bias + 0.5 * rng.standard_normal((200, 5))).astype("float32")
    return model, x, model.marginal.logpdf(x)


def test_log_likelihood_matches_the_closed_form(linear_gaussian):
    model, x, exact = linear_gaussian
    result = log_likelihood(model, x, k=1000, seed=0)
    assert result["n"] == 200 and result["k"] == 1000
    # the test-set mean within a few of its standard errors, and each example close
    assert abs(result["mean"] - exact.mean()) < 3 * result["stderr"]
    # Monte Carlo error per example: measured sd 0.013 nats at k = 1000 (0.14 at k = 10)
    np.testing.assert_allclose(result["log_px"], exact, atol=0.07)
    assert abs(result["mean"] - exact.mean()) < 0.005
    # the ELBO (mean log weight of the same draws) is below both, example by example
    assert np.all(result["elbo"] < exact) and np.all(result["elbo"] <= result["log_px"])
    assert exact.mean() - result["elbo_mean"] > 0.05  # the broadened proposal costs nats
    # k = 1 is the ELBO, in expectation
    one = log_likelihood(model, x, k=1, seed=1)
    assert abs(one["mean"] - result["elbo_mean"]) < 4 * np.std(one["log_px"]) / math.sqrt(200)


def test_log_likelihood_chunks_and_seeds(linear_gaussian):
    model, x, exact = linear_gaussian
    chunked = log_likelihood(model, x[:40], k=1000, seed=0, rows=300)  # 4 chunks of draws
    np.testing.assert_allclose(chunked["log_px"], exact[:40], atol=0.07)
    again = log_likelihood(model, x[:40], k=1000, seed=0, rows=300)
    np.testing.assert_array_equal(chunked["log_px"], again["log_px"])
    other = log_likelihood(model, x[:40], k=1000, seed=1, rows=300)
    assert not np.array_equal(chunked["log_px"], other["log_px"])


def test_log_likelihood_refuses_a_model_without_a_posterior(digits):
    model = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    with pytest.raises(KerasaeError, match=r"no posterior.*works for .*vae") as info:
        log_likelihood(model, digits[0][:4], k=5)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ iwae
def test_iwae_bound_is_above_the_elbo_of_the_same_draws(digits):
    model = tiny("iwae", k=5)
    x = tf.constant(digits[0][:32])
    log_w = model.log_weights(x, k=5, seed=(1, 2)).numpy().astype("float64")
    assert log_w.shape == (32, 5)
    bound, elbo = logsumexp(log_w, axis=1) - math.log(5), log_w.mean(axis=1)
    assert np.all(bound >= elbo - 1e-6) and np.mean(bound - elbo) > 1e-4
    # log weights = log p(x|z) + log p(z) - log q(z|x), here from their closed forms
    x5, mean, log_var, z = (t.numpy() for t in model.posterior_draws(x, 5, seed=(1, 2)))
    logits = model.decoder_logits(z).numpy().reshape(160, -1)
    flat = x5.reshape(160, -1)
    log_px_z = np.sum(flat * logits - np.logaddexp(0, logits), axis=1)
    log_pz = norm.logpdf(z).sum(axis=1)
    log_qz = norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(axis=1)
    np.testing.assert_allclose(log_w.reshape(-1), log_px_z + log_pz - log_qz, rtol=1e-4, atol=1e-3)
    losses = model.compute_losses(x, training=True)
    assert float(losses["iwae_bound"]) >= float(losses["elbo"])
    np.testing.assert_allclose(float(losses["loss"]), -float(losses["iwae_bound"]))
    np.testing.assert_allclose(
        float(losses["elbo"]), -float(losses["reconstruction"]) - float(losses["kl"]), rtol=1e-5
    )


def test_iwae_with_one_sample_is_the_elbo_and_has_no_beta(digits):
    model = tiny("iwae", k=1)
    losses = model.compute_losses(tf.constant(digits[0][:32]), training=True)
    np.testing.assert_allclose(float(losses["iwae_bound"]), float(losses["elbo"]), rtol=1e-6)
    from kerasae.callbacks.annealing import BetaAnnealing

    with pytest.raises(KerasaeError, match="no beta"):
        BetaAnnealing.check_model(model)
    with pytest.raises(KerasaeError, match="k must be a positive integer"):
        tiny("iwae", k=0)


# ------------------------------------------------------------------------ beta_tcvae
def test_beta_tcvae_terms_sum_to_the_kl_and_match_the_reference_estimator(digits):
    model = tiny("beta_tcvae", latent_dim=3, dataset_size=1000)
    mean, log_var = model.encoder(tf.constant(digits[0][:24]))
    z = model.posterior.sample(mean, log_var, seed=(4, 2))
    mi, tc, dwkl = (t.numpy() for t in model.kl_decomposition(mean, log_var, z))
    mc_kl = gaussian_kl(mean, log_var, z=z).numpy()  # log q(z|x) - log p(z), losses.py's
    np.testing.assert_allclose(mi + tc + dwkl, mc_kl, rtol=1e-4, atol=1e-4)
    # the minibatch-weighted estimates, written out as in Chen et al.'s elbo_decomposition
    mean, log_var, z = (np.asarray(t, "float64") for t in (mean, log_var, z))
    pairs = norm.logpdf(z[:, None], mean[None], np.exp(0.5 * log_var)[None])  # (M, M, D)
    log_nm = math.log(1000 * 24)
    log_qz = logsumexp(pairs.sum(-1), axis=1) - log_nm
    log_marginals = (logsumexp(pairs, axis=1) - log_nm).sum(-1)
    log_qz_x = norm.logpdf(z, mean, np.exp(0.5 * log_var)).sum(-1)
    np.testing.assert_allclose(mi, log_qz_x - log_qz, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(tc, log_qz - log_marginals, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dwkl, log_marginals - norm.logpdf(z).sum(-1), rtol=1e-4, atol=1e-3)


def test_beta_tcvae_weights(digits):
    x = tf.constant(digits[0][:32])
    model = tiny("beta_tcvae", alpha=0.5, gamma=2.0)
    assert model.beta == 6.0
    out = {k: float(v) for k, v in model.compute_losses(x, training=True).items()}
    np.testing.assert_allclose(
        out["loss"],
        out["reconstruction"]
        + 0.5 * out["mutual_info"]
        + 6.0 * out["total_correlation"]
        + 2.0 * out["dimwise_kl"],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        out["kl"],
        out["mutual_info"] + out["total_correlation"] + out["dimwise_kl"],
        rtol=1e-5,
        atol=1e-5,
    )
    assert out["beta"] == 6.0
    with pytest.raises(KerasaeError, match="dataset_size"):
        tiny("beta_tcvae", dataset_size=0)


# -------------------------------------------------------------------------- info_vae
@pytest.mark.parametrize(
    "alpha, lambda_, kl_weight, mmd_weight",
    [
        (0.0, 1.0, 1.0, 0.0),  # the VAE's negative ELBO
        (1.0, 0.0, 0.0, 0.0),  # reconstruction alone
        (0.0, 1000.0, 1.0, 999.0),  # the default, MMD-VAE
        (0.5, 10.0, 0.5, 9.5),
    ],
)
def test_info_vae_weights(digits, alpha, lambda_, kl_weight, mmd_weight):
    model = tiny("info_vae", alpha=alpha, lambda_=lambda_)
    out = {
        k: float(v)
        for k, v in model.compute_losses(tf.constant(digits[0][:32]), training=True).items()
    }
    np.testing.assert_allclose(
        out["loss"],
        out["reconstruction"] + kl_weight * out["kl"] + mmd_weight * out["mmd"],
        rtol=1e-5,
    )


def test_info_vae_alpha0_lambda1_is_the_vae(digits):
    """Same weights and seed: InfoVAE(alpha=0, lambda=1)'s loss is VAE's negative ELBO."""
    x = tf.constant(digits[0][:32])
    keras.utils.set_random_seed(5)  # also the posterior layers' seed generators
    info = tiny("info_vae", alpha=0.0, lambda_=1.0)
    keras.utils.set_random_seed(5)
    vae = tiny("vae")
    for net in ("encoder", "decoder"):
        getattr(vae, net).set_weights(getattr(info, net).get_weights())
    a = float(info.compute_losses(x, training=True)["loss"])
    b = float(vae.compute_losses(x, training=True)["loss"])
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_info_vae_mmd_is_the_papers_kernel_and_bad_weights_fail():
    rng = np.random.default_rng(0)
    q, p = rng.normal(0.3, 0.8, (40, 4)), rng.standard_normal((40, 4))
    model = tiny("info_vae", latent_dim=4)

    def k(a, b):  # Zhao et al.'s code: exp(-mean_d (a_d - b_d)^2 / dim)
        return np.exp(-np.mean((a[:, None] - b[None]) ** 2, axis=-1) / 4)

    def within(kk):
        return (kk.sum() - np.trace(kk)) / (len(kk) * (len(kk) - 1))

    expected = within(k(q, q)) + within(k(p, p)) - 2 * k(q, p).mean()
    np.testing.assert_allclose(
        float(model.mmd(q.astype("float32"), p.astype("float32"))), expected, rtol=1e-4, atol=1e-6
    )
    for bad in ({"alpha": 1.5}, {"alpha": 0.0, "lambda_": 0.5}, {"kernel": "cosine"}):
        with pytest.raises(KerasaeError):
            tiny("info_vae", **bad)


# ------------------------------------------------------------------------------ vamp
def test_vamp_prior_is_the_mixture_of_pseudo_input_posteriors():
    model = tiny("vamp", num_pseudo_inputs=7)
    means, log_vars = (np.asarray(t, "float64") for t in model.prior_components())
    assert means.shape == (7, 2)
    z = np.random.default_rng(1).normal(0, 2, (50, 2))
    comp = norm.logpdf(z[:, None], means[None], np.exp(0.5 * log_vars)[None]).sum(-1)
    expected = logsumexp(comp, axis=1) - math.log(7)
    np.testing.assert_allclose(
        model.log_prior(z.astype("float32")), expected, rtol=1e-5, atol=1e-4
    )
    # a density: it integrates to 1 over the plane (a grid fine against every scale)
    scale = np.exp(0.5 * log_vars).min()
    grid = np.arange(-10, 10, min(0.05, scale / 4))
    zz = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2).astype("float32")
    step = grid[1] - grid[0]
    total = np.exp(np.asarray(model.log_prior(zz), "float64")).sum() * step**2
    np.testing.assert_allclose(total, 1.0, rtol=1e-3)


def test_vamp_pseudo_inputs_train_but_stay_out_of_the_networks(digits):
    model = tiny("vamp", num_pseudo_inputs=5)
    assert model.pseudo_inputs.shape == (5, 8, 8, 1)
    for net in (model.encoder, model.decoder):
        assert all("pseudo" not in w.path for w in net.weights)
    x = tf.constant(digits[0][:32])
    with tf.GradientTape() as tape:
        loss = model.compute_losses(x, training=True)["loss"]
    grad = tape.gradient(loss, model.pseudo_inputs)
    assert grad is not None and np.any(np.asarray(grad) != 0)
    # the KL is log q(z|x) - log p_vamp(z) at the draw
    mean, log_var = model.encoder(x)
    z = model.posterior.sample(mean, log_var, seed=(0, 3))
    kl = model.kl_divergence(mean, log_var, z)
    mean, log_var, z64 = (np.asarray(t, "float64") for t in (mean, log_var, z))
    log_q = norm.logpdf(z64, mean, np.exp(0.5 * log_var)).sum(axis=1)
    np.testing.assert_allclose(kl, log_q - np.asarray(model.log_prior(z)), rtol=1e-4, atol=1e-3)
    samples = model.sample(6, seed=2)
    assert samples.shape == (6, 8, 8, 1)
    np.testing.assert_array_equal(samples, model.sample(6, seed=2))
    spec = model.prior_spec()  # the export's prior: the mixture itself
    means, log_vars = model.prior_components()
    assert spec["kind"] == "gmm" and len(spec["weights"]) == model.num_pseudo_inputs
    np.testing.assert_allclose(spec["means"], means, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spec["scale_diag"], np.exp(0.5 * np.asarray(log_vars)), rtol=1e-5)


# ------------------------------------------------------------------------- the CLI
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, params",
    [("iwae", ()), ("beta_tcvae", ("dataset_size=1437",)), ("info_vae", ()), ("vamp", ())],
)
def test_cli_trains_each_family(name, params, tmp_path):
    out = tmp_path / name
    args = [
        "train",
        "--model",
        name,
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--latent-dim",
        "4",
        "--out",
        str(out),
    ]
    for p in params:
        args += ["--param", p]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["model"] == name
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    cls = get_model_class(name)
    # beta is logged only while BetaAnnealing moves it (tests/test_callbacks.py)
    assert set(cls.loss_names) | set(cls.metric_names) - {"beta"} <= set(header)
    assert "beta" not in header


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ll") / "vae"
    assert (
        main(
            [
                "train",
                "--model",
                "vae",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--latent-dim",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


@pytest.mark.slow
def test_evaluate_prints_the_log_likelihood(vae_run, capsys):
    assert main(["evaluate", str(vae_run), "--log-likelihood", "--k", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    line = next(line for line in lines if line.startswith("log-likelihood:"))
    value = float(line.split()[1])
    assert value < 0 and line.endswith("with k=50") and "nats (±" in line
    assert main(["evaluate", str(vae_run), "--log-likelihood", "--k", "50", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ll = metrics["log_likelihood"]
    assert ll["k"] == 50 and ll["nats"] == pytest.approx(value, abs=0.01)
    assert ll["elbo"] <= ll["nats"] and ll["stderr"] > 0


@pytest.mark.slow
def test_evaluate_log_likelihood_refuses_an_ae(tmp_path, capsys):
    out = tmp_path / "ae"
    assert (
        main(
            [
                "train",
                "--model",
                "ae",
                "--dataset",
                "digits",
                "--epochs",
                "1",
                "--latent-dim",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(out), "--log-likelihood"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no posterior" in err and "vamp" in err
