"""aae and wae: training lowers the loss, priors match, save/load keeps both optimizers, CLI."""

import csv
import json

import keras
import numpy as np
import pytest

import kerasae
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.probability.divergences import mmd
from tests.helpers import registry_params

SMALL = {"architecture": "mlp", "hidden_units": (32,), "disc_units": (32,)}
VARIANTS = {
    "aae": ("aae", {}),
    "wae-critic": ("wae", {"n_critic": 2}),
    "wae-gan": ("wae", {"variant": "gan"}),
    "wae-mmd": ("wae", {"variant": "mmd"}),
}
COLUMNS = {
    "aae": {"disc_loss", "gen_loss", "jsd", "gp", "mmd"},
    "wae-critic": {"critic_loss", "gen_loss", "gp", "w1", "mmd"},
    "wae-gan": {"disc_loss", "gen_loss", "jsd", "gp", "mmd"},
    "wae-mmd": {"mmd"},
}


@pytest.mark.parametrize("key", registry_params(VARIANTS, fast=()))
def test_training_lowers_reconstruction_and_save_load_keeps_both_optimizers(key, digits, tmp_path):
    name, params = VARIANTS[key]
    x = digits[0][:512]
    model = kerasae.create_model(name, input_shape=(8, 8, 1), latent_dim=4, **SMALL, **params)
    model.compile()
    history = model.fit(x, epochs=4, batch_size=32, verbose=0).history
    assert {"loss", *COLUMNS[key]} <= set(history)
    assert history["loss"][-1] < 0.85 * history["loss"][0], history["loss"]
    assert all(np.isfinite(v).all() for v in history.values())

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kerasae.load_model(str(path))
    np.testing.assert_array_equal(loaded.reconstruct(x[:8]), model.reconstruct(x[:8]))
    np.testing.assert_array_equal(loaded.sample(4, seed=3), model.sample(4, seed=3))
    assert loaded.get_compile_config().keys() == model.get_compile_config().keys()
    if model.disc_optimizer is not None:  # the discriminator's Adam state survived too
        assert int(loaded.disc_optimizer.iterations) == int(model.disc_optimizer.iterations) > 0
        for a, b in zip(loaded.disc_optimizer.variables, model.disc_optimizer.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        loaded.fit(x[:128], epochs=1, batch_size=64, verbose=0)  # and it trains on


@pytest.mark.slow
def test_aae_mixture_prior_puts_the_aggregated_posterior_on_the_prior(digits):
    x = digits[0]
    common = dict(input_shape=(8, 8, 1), latent_dim=2, hidden_units=(64,))
    aae = kerasae.create_model(
        "aae", prior="mixture", disc_units=(64, 64), architecture="mlp", **common
    )
    ae = kerasae.create_model("ae", **common)
    for model in (aae, ae):
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        model.fit(x, epochs=15, batch_size=64, verbose=0)
    prior = aae.sample_prior(1000, seed=1)
    matched, plain = mmd(aae.encode(x[:1000]), prior), mmd(ae.encode(x[:1000]), prior)
    assert matched < 0.2 * plain, (matched, plain)
    # the codes spread over the ring of components rather than collapsing onto a few
    angles = np.arctan2(*aae.encode(x[:1000]).T[::-1])
    occupied = np.histogram(angles, bins=10, range=(-np.pi, np.pi))[0]
    assert (occupied > 20).sum() >= 7, occupied


def test_priors_have_the_documented_shape():
    model = kerasae.create_model(
        "wae", input_shape=(8, 8, 1), latent_dim=4, prior="mixture", prior_components=6, **SMALL
    )
    z = model.sample_prior(6000, seed=0)
    radius = np.linalg.norm(z[:, :2], axis=1)
    assert abs(np.median(radius) - 2.0) < 0.2 and abs(z[:, 2:].std() - 0.5) < 0.05
    uniform = kerasae.create_model(
        "aae", input_shape=(8, 8, 1), latent_dim=3, prior="uniform", **SMALL
    ).sample_prior(6000, seed=0)
    assert np.abs(uniform).max() <= 3**0.5 and abs(uniform.var() - 1.0) < 0.05
    assert np.array_equal(model.sample_prior(5, seed=7), model.sample_prior(5, seed=7))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"variant": "wgan"}, "variant"),
        ({"prior": "laplace"}, "prior"),
        ({"n_critic": 0}, "n_critic"),
        ({"kernel": "cosine"}, "kernel"),
    ],
)
def test_bad_parameters_name_the_problem(params, match):
    with pytest.raises(KerasaeError, match=match):
        kerasae.create_model("wae", input_shape=(8, 8, 1), latent_dim=2, **SMALL, **params)


@pytest.mark.slow
def test_cli_train_history_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model",
                "wae",
                "--param",
                "variant=mmd",
                "--param",
                "filters=(8,16)",
                "--dataset",
                "digits",
                "--epochs",
                "2",
                "--latent-dim",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert {"loss", "mmd", "val_mmd"} <= set(rows[0])
    assert json.loads((out / "config.json").read_text())["model_config"]["variant"] == "mmd"
    assert main(["sample", str(out), "-n", "16"]) == 0
    assert (out / "samples" / "samples.png").stat().st_size > 0
    assert (
        main(
            ["train", "--model", "wae", "--param", "variant=wgan", "--out", str(tmp_path / "bad")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "variant" in err[0]
