"""The flows in the posterior (issue 31): MADE's autoregressive property, each flow's
log-determinant against a numerical Jacobian, and the vae_linnf / vae_iaf families."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.models.registry import get_model_class
from kerasae.nets import flows
from kerasae.nets.made import MADE
from kerasae.testing.contract import check_fit_lowers_loss


def _jacobians(layer, x):
    """d shift / dx and d log_scale / dx per example (a loop of gradients: cheap at this size)."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = layer(x)
    return [tape.batch_jacobian(o, x, experimental_use_pfor=False).numpy() for o in outputs]


@pytest.mark.parametrize("order, hidden", [((2, 0, 4, 1, 3), (16, 9, 5)), ("right-to-left", ())])
def test_made_outputs_depend_only_on_earlier_inputs(order, hidden):
    layer = MADE(5, hidden_units=hidden, order=order)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    perm = list(layer.order)
    for jac in _jacobians(layer, x):
        permuted = jac[:, perm][:, :, perm]  # rows and columns in autoregressive order
        assert np.all(np.triu(permuted) == 0.0)  # strictly lower-triangular
        # and MADE is not trivially zero: the last output sees every earlier input
        assert np.any(np.abs(np.tril(permuted, -1)) > 0)


def test_made_round_trips_and_rejects_bad_arguments(tmp_path):
    layer = MADE(4, hidden_units=(8,), order="right-to-left", output_initializer="zeros")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(1).normal(size=(2, 4)).astype("float32")
    path = str(tmp_path / "made.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert loaded.layers[-1].order == (3, 2, 1, 0)
    with pytest.raises(KerasaeError, match="permutation"):
        MADE(3, order=(0, 0, 1))
    with pytest.raises(KerasaeError, match="order must be one of"):
        MADE(3, order="random")


# ------------------------------------------------------------------ the flows' log-dets
def _autodiff_log_det(fn, z):
    """log |det df/dz| of each row from the Jacobian autodiff gives (tf.GradientTape)."""
    z = tf.convert_to_tensor(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        out = fn(z)
    jac = tape.batch_jacobian(out, z, experimental_use_pfor=False).numpy().astype("float64")
    sign, log_abs = np.linalg.slogdet(jac)
    assert np.all(sign != 0)
    return sign, log_abs


def _set(layer, **values):
    for name, value in values.items():
        getattr(layer, name).assign(np.asarray(value, "float32"))


@pytest.mark.parametrize("kind", ["planar", "radial", "iaf"])
def test_each_flow_log_det_is_the_log_abs_det_of_its_jacobian(kind):
    rng = np.random.default_rng(4)
    z = rng.normal(size=(6, 4)).astype("float32")
    layer = {
        "planar": flows.PlanarFlow(),
        "radial": flows.RadialFlow(),
        "iaf": flows.IAFStep(4, hidden_units=(8, 8)),
    }[kind]
    layer.build(z.shape)
    if kind == "planar":  # w.u = -4: only u_hat keeps the map invertible
        w = rng.normal(size=4)
        _set(layer, w=w, u=-4.0 * w / np.sum(w**2) + 0.1 * rng.normal(size=4), b=0.3)
    elif kind == "radial":  # beta_raw very negative: beta at its bound -alpha
        _set(layer, z0=rng.normal(size=4), log_alpha=0.2, beta_raw=-3.0)
    _, log_det = layer(z)
    sign, expected = _autodiff_log_det(lambda t: layer(t)[0], z)
    np.testing.assert_allclose(log_det, expected, atol=2e-4)
    if kind == "planar":
        assert np.all(sign > 0)  # orientation-preserving everywhere: invertible


def test_a_stack_adds_the_log_dets_and_its_call_is_the_transform():
    z = np.random.default_rng(5).normal(size=(5, 3)).astype("float32")
    stack = flows.FlowStack(3, ("planar", "radial", "iaf", "iaf"), iaf_hidden_units=(6,))
    out, log_det = stack.transform(z)
    np.testing.assert_allclose(stack(z), out, atol=1e-6)
    np.testing.assert_allclose(log_det, _autodiff_log_det(stack, z)[1], atol=3e-4)
    with pytest.raises(KerasaeError, match="flows must be among planar, radial, iaf"):
        flows.FlowStack(3, ("planar", "maf"))


def test_iaf_steps_are_autoregressive_in_reversed_orders():
    stack = flows.FlowStack(4, ("iaf", "iaf"), iaf_hidden_units=(12, 12))
    z = np.random.default_rng(6).normal(size=(3, 4)).astype("float32")
    stack.build(z.shape)
    orders = [step.made.order for step in stack.steps]
    assert orders == [(0, 1, 2, 3), (3, 2, 1, 0)]
    for step in stack.steps:
        x = tf.convert_to_tensor(z)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            out, log_det = step(x)
        jac = tape.batch_jacobian(out, x, experimental_use_pfor=False).numpy()
        perm = list(step.made.order)
        permuted = jac[:, perm][:, :, perm]
        assert np.all(np.triu(permuted, 1) == 0.0)  # z_i depends on z_<=i in its order
        diag = np.diagonal(jac, axis1=1, axis2=2)  # sigma: in (0, 1)
        assert np.all((diag > 0) & (diag < 1))
        np.testing.assert_allclose(np.log(diag).sum(-1), log_det, atol=1e-5)


# ------------------------------------------------------------------ the families
def tiny(name, **kwargs):
    cls = get_model_class(name)
    return cls(input_shape=(8, 8, 1), **{**cls.tiny_config, **kwargs})


@pytest.mark.parametrize("name", ["vae_linnf", "vae_iaf"])
def test_log_weights_are_the_hand_computed_importance_weights_and_z_is_the_flow_of_the_mean(
    name, digits
):
    model = tiny(name)
    x = digits[0][:3]
    k, seed = 2, 7
    got = model.log_weights(tf.constant(x), k=k, seed=seed).numpy()
    # by hand: q_0's draw (the same stateless noise), the flow, its log|det| from autodiff
    mean, log_var = (np.repeat(t.numpy(), k, axis=0) for t in model.q0(x))
    z0 = model.posterior.sample(mean, log_var, seed=seed).numpy()
    zk = model.flow(z0).numpy()
    _, log_det = _autodiff_log_det(model.flow, z0)
    log_q0 = np.sum(-0.5 * ((z0 - mean) ** 2 / np.exp(log_var) + log_var + np.log(2 * np.pi)), -1)
    log_prior = np.sum(-0.5 * (zk**2 + np.log(2 * np.pi)), -1)
    p = model.decoder(zk).numpy().astype("float64").reshape(len(zk), -1)
    xs = np.repeat(x, k, axis=0).reshape(len(zk), -1)
    log_lik = np.sum(xs * np.log(p) + (1 - xs) * np.log1p(-p), -1)
    expected = (log_lik + log_prior - (log_q0 - log_det)).reshape(-1, k)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-3)
    # and the ELBO is their mean: the objective and the weights agree on the same draws
    nll, kl, _ = model.negative_elbo(tf.constant(x), seed=seed, draws=k)
    np.testing.assert_allclose(-(nll + kl), expected.mean(1), rtol=1e-4, atol=2e-3)
    # the exported encoder holds the flow: its code is f(z_mean), q_0 follows it
    x = digits[0][:5]
    z, mean, log_var = (t.numpy() for t in model.encoder(x))
    assert model.encoder.output_names == ["z", "z_mean", "z_log_var"]
    np.testing.assert_allclose(model.encode(x), z, atol=1e-6)
    np.testing.assert_allclose(z, model.flow(mean), atol=1e-6)
    assert not np.allclose(z, mean, atol=1e-3)  # the flow does something
    got_mean, got_log_var = model.encode_distribution(x)
    np.testing.assert_allclose(got_mean, mean, atol=1e-6)
    np.testing.assert_allclose(got_log_var, log_var, atol=1e-6)
    flow_weights = {id(v) for v in model.flow.trainable_weights}
    assert flow_weights <= {id(v) for v in model.encoder.trainable_weights}
    np.testing.assert_allclose(model.reconstruct(x), model.decode(z), atol=1e-6)


@pytest.mark.slow
def test_a_short_fit_lowers_the_loss(digits):
    model = tiny("vae_iaf")
    x = digits[0][:256]
    before, after = check_fit_lowers_loss(model, x, epochs=3)
    assert after < before


def test_bad_arguments_give_one_line_errors():
    for kwargs, message in [
        ({"flows": ("planar", "iaf")}, "flows must be a non-empty list of planar and radial"),
        ({"flows": ()}, "flows must be a non-empty list"),
    ]:
        with pytest.raises(KerasaeError, match=message) as info:
            tiny("vae_linnf", **kwargs)
        assert "\n" not in str(info.value)
    with pytest.raises(KerasaeError, match="n_made_blocks must be an integer >= 1, got 0"):
        tiny("vae_iaf", n_made_blocks=0)
    with pytest.raises(KerasaeError, match="hidden_size must be an integer >= 1"):
        tiny("vae_iaf", hidden_size=2.5)
    assert tiny("vae_linnf", flows="radial,planar").flows == ("radial", "planar")


# ------------------------------------------------------------------ the CLI
@pytest.mark.slow
@pytest.mark.parametrize("name", ["vae_linnf", "vae_iaf"])
def test_cli_trains_and_evaluates_the_log_likelihood(name, tmp_path, capsys):
    out = tmp_path / name
    args = ["train", "--model", name, "--dataset", "digits", "--epochs", "2"]
    assert main([*args, "--latent-dim", "4", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["status"] == "finished" and config["model"] == name
    assert (out / "model.keras").is_file()
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "reconstruction", "kl"} <= set(header)
    capsys.readouterr()
    assert main(["evaluate", str(out), "--log-likelihood", "--k", "20", "--json"]) == 0
    ll = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["log_likelihood"]
    assert ll["k"] == 20 and np.isfinite(ll["nats"]) and ll["nats"] < 0
    assert ll["elbo"] <= ll["nats"]  # the importance-weighted bound is above the ELBO
