"""dip_vae (DIP-VAE-I and -II) and disentangled_beta_vae (the annealed capacity).

The DIP penalty against numpy on a known batch, for both variants; the capacity C against
its linear schedule, counted by the compiled train step, in the loss as |KL - C|, and
kept by save/load and by the weights a checkpoint holds. Both families train on digits,
and bad arguments are refused in one line.
"""

import keras
import numpy as np
import pytest

import kerasae
from kerasae.callbacks.annealing import BetaAnnealing
from kerasae.errors import KerasaeError
from kerasae.runs.config import TrainConfig
from kerasae.runs.folder import resume_config
from kerasae.runs.training import train

TINY = {"input_shape": (8, 8, 1), "hidden_units": (16,)}


def tiny(name, **kwargs):
    return kerasae.create_model(name, **{**TINY, "latent_dim": 3, **kwargs})


def numpy_dip(cov, lambda_od, lambda_d):
    off = cov - np.diag(np.diag(cov))
    return lambda_od * np.sum(off**2) + lambda_d * np.sum((np.diag(cov) - 1.0) ** 2)


# ------------------------------------------------------------------ dip_vae
@pytest.fixture(scope="module")
def posterior():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(32, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 0.8, 0.3], [0, 0, 1.5]])
    log_var = rng.normal(-1.0, 0.5, size=(32, 3))
    return mean.astype("float32"), log_var.astype("float32")


@pytest.mark.parametrize("variant", ["i", "ii"])
def test_the_dip_penalty_equals_numpy(variant, posterior):
    mean, log_var = posterior
    model = tiny("dip_vae", variant=variant, lambda_od=3.0, lambda_d=7.0)
    cov = np.cov(mean, rowvar=False, ddof=0)  # Cov[mu(x)], divided by n
    if variant == "ii":  # + E_x[Cov q(z|x)]: the mean posterior variance on the diagonal
        cov = cov + np.diag(np.exp(log_var).mean(axis=0))
    got = model.posterior_penalties(mean, log_var, mean)
    assert list(got) == ["dip"]
    np.testing.assert_allclose(float(got["dip"]), numpy_dip(cov, 3.0, 7.0), rtol=1e-5)


def test_the_dip_term_is_added_to_the_elbo(digits):
    model = tiny("dip_vae")
    out = model.compute_losses(digits[0][:64])
    total = out["reconstruction"] + out["kl"] + out["dip"]  # beta = 1
    np.testing.assert_allclose(float(out["loss"]), float(total), rtol=1e-5)


def test_lambda_d_defaults_by_variant_and_is_recorded():
    assert tiny("dip_vae").lambda_d == 100.0  # 10 * lambda_od for DIP-VAE-I
    second = tiny("dip_vae", variant="ii")
    assert second.lambda_d == 10.0 and second.get_config()["lambda_d"] == 10.0
    assert tiny("dip_vae", variant="ii", lambda_od=2, lambda_d=5).lambda_d == 5.0


def test_dip_vae_training_lowers_the_penalty(digits):
    model = tiny("dip_vae", latent_dim=4)
    model.compile()
    history = model.fit(digits[0][:512], epochs=3, batch_size=64, verbose=0).history
    assert history["dip"][-1] < history["dip"][0], history["dip"]
    assert history["loss"][-1] < history["loss"][0]


# ------------------------------------------------------------------ disentangled_beta_vae
def test_capacity_rises_linearly_to_c_max_then_holds():
    model = tiny("disentangled_beta_vae", c_min=1.0, c_max=5.0, anneal_steps=8)
    for step, want in ((0, 1.0), (2, 2.0), (4, 3.0), (8, 5.0), (100, 5.0)):
        model.capacity_step.assign(step)
        np.testing.assert_allclose(float(model.capacity()), want, rtol=1e-6)
    assert float(tiny("disentangled_beta_vae", anneal_steps=0).capacity()) == 25.0


def test_the_train_step_counts_and_the_metric_follows(digits, tmp_path):
    model = tiny("disentangled_beta_vae", c_max=4.0, anneal_steps=8, gamma=10.0)
    model.compile()
    # 4 steps per epoch: C is 0.5 * step, the epoch's mean that of its steps
    history = model.fit(digits[0][:64], epochs=3, batch_size=16, verbose=0).history
    assert int(model.capacity_step.numpy()) == 12
    np.testing.assert_allclose(history["capacity"], [0.75, 2.75, 4.0], rtol=1e-5)
    # the KL follows C up: the code carries more, the reconstruction improves
    assert history["reconstruction"][-1] < history["reconstruction"][0]
    # the step count is a weight: a saved model and a checkpoint's weights keep C
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = kerasae.load_model(path)
    assert int(loaded.capacity_step.numpy()) == 12 and float(loaded.capacity()) == 4.0
    weights = tmp_path / "epoch.weights.h5"
    model.save_weights(weights)
    fresh = tiny("disentangled_beta_vae", c_max=4.0, anneal_steps=8, gamma=10.0)
    fresh.load_weights(weights)
    assert int(fresh.capacity_step.numpy()) == 12


class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("simulated crash")


@pytest.mark.slow
def test_a_resumed_run_goes_on_from_the_capacity_it_reached(tmp_path):
    run = tmp_path / "run"
    params = {"hidden_units": (8,), "anneal_steps": 100, "c_max": 10.0}
    config = TrainConfig(
        model="disentangled_beta_vae", epochs=3, batch_size=256, latent_dim=2, params=params,
        out=str(run), dataset="digits",
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, callbacks=[Crash()], verbose=0)
    _, model, history = train(resume_config(str(run)), verbose=0, resume=True)
    # 1437 examples, batch 256: 6 steps per epoch, C = 0.1 * step, the epoch's mean
    assert int(model.capacity_step.numpy()) == 18
    np.testing.assert_allclose(history["capacity"][-1], 0.1 * np.mean(range(12, 18)), rtol=1e-5)


@pytest.mark.parametrize("step", [0, 400])  # C = 0 (KL above C) and C = 40 (KL below)
def test_the_loss_is_reconstruction_plus_gamma_times_the_kl_gap(step, digits):
    model = tiny("disentangled_beta_vae", c_max=40.0, anneal_steps=400, gamma=3.0)
    model.capacity_step.assign(step)
    out = {k: float(v) for k, v in model.compute_losses(digits[0][:64]).items()}
    assert out["capacity"] == 40.0 * step / 400
    gap = abs(out["kl"] - out["capacity"])
    assert (out["kl"] < out["capacity"]) == bool(step)  # both sides of the absolute value
    np.testing.assert_allclose(out["loss"], out["reconstruction"] + 3.0 * gap, rtol=1e-5)


def test_capacity_has_no_beta_to_anneal():
    with pytest.raises(KerasaeError, match="has no beta"):
        BetaAnnealing.check_model(tiny("disentangled_beta_vae"))


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("dip_vae", {"variant": "iii"}, 'variant must be "i"'),
        ("dip_vae", {"variant": "I"}, 'variant must be "i"'),
        ("dip_vae", {"lambda_od": -1.0}, "lambda_od must be a number >= 0"),
        ("dip_vae", {"lambda_d": "big"}, "lambda_d must be a number >= 0"),
        ("disentangled_beta_vae", {"gamma": -2.0}, "gamma must be a number >= 0"),
        ("disentangled_beta_vae", {"c_min": 5.0, "c_max": 1.0}, "c_min must not exceed c_max"),
        ("disentangled_beta_vae", {"anneal_steps": -1}, "anneal_steps must be an integer"),
        ("disentangled_beta_vae", {"anneal_steps": 2.5}, "anneal_steps.* must be an integer"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(name, kwargs, match):
    with pytest.raises(KerasaeError, match=match) as info:
        tiny(name, **kwargs)
    assert "\n" not in str(info.value)
