"""miwae, piwae and ciwae (Rainforth et al., ICML 2018) on top of the IWAE.

The bounds' identities on the same draws (MIWAE with M = 1 is the IWAE, CIWAE with
beta = 1 the ELBO and with beta = 0 the IWAE bound, ELBO <= MIWAE(M, K) <= IWAE_MK on any
draws, and MIWAE(M, K) has IWAE_K's expectation), each against numpy's log-sum-exp; the
PIWAE gradient split (the decoder gets -IWAE_MK's gradient, the encoder -MIWAE's); a
short fit; bad arguments. The slow tests train each family with the CLI and evaluate
--log-likelihood.
"""

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.models.iwae import importance_bound
from kerasae.models.registry import get_model_class

TINY = {"hidden_units": (16,), "filters": (4, 8)}


def tiny(name, **kwargs):
    return kerasae.create_model(name, input_shape=(8, 8, 1), latent_dim=2, **{**TINY, **kwargs})


def same_weights(*models):
    for other in models[1:]:
        other.set_weights(models[0].get_weights())
    return models


def losses_at(model, x, seed=7):
    """compute_losses on draws fixed by `seed` (the posterior's seed generator reset)."""
    model.reseed(seed)
    return {k: float(v) for k, v in model.compute_losses(x, training=True).items()}


def numpy_bounds(log_w, m, k):
    """(ELBO, MIWAE(m, k), IWAE_mk) per example, float64, by numpy."""
    log_w = np.asarray(log_w, "float64")
    groups = log_w.reshape(-1, m, k)
    miwae = (logsumexp(groups, axis=2) - math.log(k)).mean(axis=1)
    return log_w.mean(axis=1), miwae, logsumexp(log_w, axis=1) - math.log(m * k)


def test_bounds_are_ordered_on_the_same_draws_and_match_numpy(digits):
    model = tiny("miwae", m=4, k=3)
    x = tf.constant(digits[0][:32])
    log_w = model.log_weights(x, 12, seed=(1, 2))
    elbo, miwae, iwae = (t.numpy() for t in model.bounds(log_w))
    ref = numpy_bounds(log_w, 4, 3)
    for ours, theirs in zip((elbo, miwae, iwae), ref):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    # Jensen twice, example by example: within each group and across the groups' means
    assert np.all(elbo <= miwae + 1e-4) and np.all(miwae <= iwae + 1e-4)
    assert np.mean(miwae - elbo) > 1e-3 and np.mean(iwae - miwae) > 1e-3
    # the step logs these same three figures, and its loss is -MIWAE of its draws
    losses = losses_at(model, x)
    model.reseed(7)
    elbo, miwae, iwae = numpy_bounds(model.log_weights(x, 12, training=True), 4, 3)
    assert losses["loss"] == pytest.approx(-miwae.mean(), rel=1e-5)
    assert losses["miwae_bound"] == pytest.approx(miwae.mean(), rel=1e-5)
    assert losses["iwae_bound"] == pytest.approx(iwae.mean(), rel=1e-5)
    assert losses["elbo"] == pytest.approx(elbo.mean(), rel=1e-5)
    assert losses["elbo"] == pytest.approx(-losses["reconstruction"] - losses["kl"], rel=1e-5)


def test_miwae_has_the_expectation_of_iwae_k_below_iwae_mk(digits):
    """MIWAE(M, K) averages M independent IWAE_K: the same expectation as IWAE_K, below
    IWAE_MK's (Burda et al.'s monotonicity), with a smaller spread than IWAE_K's."""
    model = tiny("miwae", m=4, k=3)
    log_w = model.log_weights(tf.constant(digits[0][:8]), 4 * 3 * 500, seed=(3, 4)).numpy()
    draws = log_w.reshape(8, 500, 12)  # 500 independent sets of M*K draws per example
    miwae = np.stack([numpy_bounds(d, 4, 3)[1] for d in draws])  # (8, 500)
    iwae_k = logsumexp(draws[..., :3], axis=2) - math.log(3)
    iwae_mk = logsumexp(draws, axis=2) - math.log(12)
    se = np.sqrt(iwae_k.var(axis=1) / 500 + miwae.var(axis=1) / 500)
    assert np.all(np.abs(miwae.mean(axis=1) - iwae_k.mean(axis=1)) < 4 * se)
    assert np.all(miwae.mean(axis=1) < iwae_mk.mean(axis=1))
    assert np.all(miwae.var(axis=1) < iwae_k.var(axis=1))


def test_special_cases_are_the_iwae_and_the_elbo(digits):
    x = tf.constant(digits[0][:32])
    iwae, miwae, ciwae = same_weights(
        tiny("iwae", k=4), tiny("miwae", m=1, k=4), tiny("ciwae", k=4)
    )
    ref = losses_at(iwae, x)
    assert losses_at(miwae, x)["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    combined = {}
    for beta in (0.0, 0.5, 1.0):
        ciwae.beta = beta  # read at each step: one model for the three weights
        combined[beta] = losses_at(ciwae, x)["loss"]
    assert combined[0.0] == pytest.approx(ref["loss"], rel=1e-6)  # the IWAE bound
    assert combined[1.0] == pytest.approx(-ref["elbo"], rel=1e-6)  # the ELBO of K draws
    assert combined[0.5] == pytest.approx(-(ref["elbo"] + ref["iwae_bound"]) / 2, rel=1e-6)
    assert combined[1.0] > combined[0.5] > combined[0.0]  # looser bounds, larger losses


def test_piwae_decoder_follows_iwae_mk_and_encoder_follows_miwae(digits):
    # a gaussian likelihood with a learned scale: the scale is the generative network's too
    # (the bernoulli default goes the same way, through decoder_nll; the slow fit trains it)
    model = tiny("piwae", m=3, k=2, likelihood="gaussian", learn_scale=True)
    x = tf.constant(digits[0][:16])
    decoder = model.decoder.trainable_variables + model.likelihood_layer.trainable_variables
    encoder = model.encoder.trainable_variables
    assert len(decoder) == 5

    def grads(objective, variables):
        model.reseed(11)
        with tf.GradientTape() as tape:
            loss = objective()
        return loss, tape.gradient(loss, variables)

    def total():
        return model.compute_losses(x, training=True)["loss"]

    def bound(which):
        return lambda: -tf.reduce_mean(model.bounds(model.log_weights(x, 6, training=True))[which])

    loss, on_decoder = grads(total, decoder)
    _, on_encoder = grads(total, encoder)
    iwae, want_decoder = grads(bound(2), decoder)
    _, want_encoder = grads(bound(1), encoder)
    _, iwae_on_encoder = grads(bound(2), encoder)
    assert float(loss) == pytest.approx(float(iwae), rel=1e-6)  # its value: -IWAE_MK
    for got, want in [*zip(on_decoder, want_decoder), *zip(on_encoder, want_encoder)]:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the split matters: -IWAE_MK's own encoder gradient is another one
    assert any(
        not np.allclose(a, b, rtol=1e-3, atol=1e-3) for a, b in zip(on_encoder, iwae_on_encoder)
    )


@pytest.mark.slow
def test_a_short_fit_lowers_the_loss(digits):
    x = digits[0][:256]
    for model in (tiny("piwae", m=2, k=3), tiny("ciwae", k=3)):  # the split gradient, compiled
        model.reseed(0)
        model.compile()
        history = model.fit(x, epochs=3, batch_size=64, verbose=0).history
        assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
        assert history["iwae_bound"][-1] > history["iwae_bound"][0]


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("miwae", {"m": 0}, "m must be a positive integer"),
        ("piwae", {"m": -2}, "m must be a positive integer"),
        ("piwae", {"m": True}, "'m' of model 'piwae' must be an integer"),
        ("miwae", {"k": 0}, "k must be a positive integer"),
        ("ciwae", {"beta": 1.5}, r"beta must be a number in \[0, 1\], got 1.5"),
        ("ciwae", {"beta": -0.1}, r"beta must be a number in \[0, 1\]"),
        ("ciwae", {"beta": "half"}, "'beta' of model 'ciwae' must be a number"),
    ],
)
def test_bad_arguments_are_one_line_errors(name, kwargs, message):
    with pytest.raises(KerasaeError, match=message) as info:
        tiny(name, **kwargs)
    assert "\n" not in str(info.value)


def test_defaults_are_pythae_s_and_ciwae_has_no_kl_weight():
    from kerasae.callbacks.annealing import BetaAnnealing

    for name in ("miwae", "piwae"):
        model = tiny(name)
        assert (model.m, model.k) == (5, 10)
    model = tiny("ciwae")
    assert (model.k, model.beta) == (10, 0.5) and model.get_config()["beta"] == 0.5
    with pytest.raises(KerasaeError, match="no beta"):  # beta is not a KL weight here
        BetaAnnealing.check_model(model)


def test_importance_bound_is_log_mean_exp():
    log_w = np.array([[-1000.0, -1001.0, -1003.0], [0.5, 0.5, 0.5]], "float32")
    want = logsumexp(log_w.astype("float64"), axis=1) - math.log(3)
    np.testing.assert_allclose(importance_bound(tf.constant(log_w), axis=1), want, rtol=1e-6)


# ------------------------------------------------------------------------- the CLI
@pytest.mark.slow
@pytest.mark.parametrize("name", ["miwae", "piwae", "ciwae"])
def test_cli_trains_and_evaluates_the_log_likelihood(name, tmp_path, capsys):
    out = tmp_path / name
    args = ["train", "--model", name, "--dataset", "digits", "--epochs", "2"]
    args += ["--latent-dim", "4", "--out", str(out), "--param", "k=4"]
    if name != "ciwae":
        args += ["--param", "m=2"]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["model"] == name
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    cls = get_model_class(name)
    assert set(cls.loss_names) | set(cls.metric_names) <= set(header)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--log-likelihood", "--k", "50", "--json"]) == 0
    ll = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["log_likelihood"]
    assert ll["k"] == 50 and ll["elbo"] <= ll["nats"] < 0 and ll["stderr"] > 0
