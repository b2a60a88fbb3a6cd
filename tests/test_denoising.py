"""dae and sdae: corruption types, training-only corruption, denoising, layer-wise pretraining."""

import csv
import json

import numpy as np
import pytest

import kerasae
from kerasae.errors import KerasaeError
from kerasae.models.denoising import corrupt


def test_each_noise_corrupts_the_documented_fraction():
    x = np.full((64, 100), 0.5, dtype="float32")
    masked = np.asarray(corrupt(x, "masking", 0.3))
    assert np.all((masked == 0).sum(axis=1) == 30)  # exactly round(0.3 * 100) per example
    assert np.all(masked[masked != 0] == 0.5)
    salted = np.asarray(corrupt(x, "salt_and_pepper", 0.2))
    assert np.all((salted != 0.5).sum(axis=1) == 20)
    assert set(np.unique(salted)) == {0.0, 0.5, 1.0}
    assert 0.4 < (salted == 1.0).sum() / (salted != 0.5).sum() < 0.6  # salt and pepper alike
    noisy = np.asarray(corrupt(x, "gaussian", 0.1))
    assert abs(np.std(noisy - x) - 0.1) < 0.005
    clipped = np.asarray(corrupt(np.zeros((64, 100), "float32"), "gaussian", 0.3))
    assert clipped.min() == 0.0 and clipped.max() <= 1.0 and (clipped > 0).mean() > 0.4


def test_bad_noise_settings_are_refused():
    for params, match in (
        ({"noise": "speckle"}, "noise must be one of"),
        ({"noise_level": 0.0}, "positive"),
        ({"noise": "masking", "noise_level": 1.0}, "below 1"),
    ):
        with pytest.raises(KerasaeError, match=match):
            kerasae.create_model("dae", input_shape=(8, 8, 1), latent_dim=2, **params)


def test_corruption_only_in_training_and_dae_denoises(digits):
    import keras

    x = digits[0][:512]
    model = kerasae.create_model(
        "dae",
        input_shape=(8, 8, 1),
        latent_dim=16,
        hidden_units=(64,),
        noise="gaussian",
        noise_level=0.3,
    )
    model.compile(keras.optimizers.Adam(3e-3))
    eval_a = float(model.compute_losses(x[:64], training=False)["loss"])
    eval_b = float(model.compute_losses(x[:64], training=False)["loss"])
    train = float(model.compute_losses(x[:64], training=True)["loss"])
    assert eval_a == eval_b != train
    np.testing.assert_allclose(
        model.score(x[:8]).mean(), float(model.compute_losses(x[:8])["loss"]), rtol=1e-5
    )

    model.fit(x, epochs=30, batch_size=64, verbose=0)
    noisy = np.asarray(model.corrupt(x))
    np.testing.assert_array_equal(model.denoise(noisy[:8]), model.reconstruct(noisy[:8]))
    noisy_mse = np.mean((noisy - x) ** 2)
    denoised_mse = np.mean((model.denoise(noisy) - x) ** 2)
    assert denoised_mse < 0.6 * noisy_mse, (noisy_mse, denoised_mse)


@pytest.mark.slow
def test_conv_dae_learns(digits):
    import keras

    x = digits[0][:256]
    model = kerasae.create_model(
        "dae",
        input_shape=(8, 8, 1),
        latent_dim=8,
        architecture="conv",
        filters=(8, 16),
        noise="masking",
        noise_level=0.25,
    )
    assert model.score_sigma is None  # masking noise gives no score estimate
    model.compile(keras.optimizers.Adam(3e-3))
    before = float(model.compute_losses(x)["loss"])
    model.fit(x, epochs=3, batch_size=32, verbose=0)
    assert float(model.compute_losses(x)["loss"]) < before


@pytest.mark.slow
def test_spatial_code_dae_denoises(digits):
    import keras

    x = digits[0][:512]
    model = kerasae.create_model(
        "dae",
        input_shape=(8, 8, 1),
        latent_dim=128,
        architecture="conv",
        code="spatial",
        filters=(32,),
        noise="gaussian",
        noise_level=0.3,
    )
    assert model.encoder.get_layer("z_conv").filters == 8  # a 4x4 grid of 8 channels
    model.compile(keras.optimizers.Adam(3e-3))
    model.fit(x, epochs=20, batch_size=64, verbose=0)
    noisy = np.asarray(model.corrupt(x))
    noisy_mse = np.mean((noisy - x) ** 2)
    denoised_mse = np.mean((model.denoise(noisy) - x) ** 2)
    assert denoised_mse < 0.6 * noisy_mse, (noisy_mse, denoised_mse)


@pytest.mark.slow
def test_sdae_pretrains_every_layer_then_fine_tunes(digits, tmp_path):
    x = digits[0][:384]
    model = kerasae.create_model(
        "sdae", input_shape=(8, 8, 1), latent_dim=4, hidden_units=(32, 16), pretrain_epochs=3
    )
    model.compile()
    initial = [pair[0].get_weights()[0].copy() for pair in model.layer_pairs()]
    history = model.fit(x, epochs=2, batch_size=64, verbose=0)
    records = model.pretraining_history
    assert [r["units"] for r in records] == ["64->32", "32->16", "16->4"]
    for rec, w0, (enc, _) in zip(records, initial, model.layer_pairs()):
        assert rec["clean_loss_after"] < rec["clean_loss_before"], rec
        assert rec["loss"][-1] < rec["loss"][0], rec
        assert not np.allclose(enc.get_weights()[0], w0)
    assert len(history.history["loss"]) == 2  # the fit history holds fine-tuning epochs only

    path = tmp_path / "sdae.keras"
    model.save(path)
    loaded = kerasae.load_model(str(path))
    assert int(loaded.pretrained.numpy()) == 3
    before = loaded.encode(x[:4])
    loaded.fit(x[:64], epochs=1, batch_size=64, verbose=0)  # no second pretraining
    assert loaded.pretraining_history == []
    assert np.abs(loaded.encode(x[:4]) - before).max() < 1.0


@pytest.mark.slow
def test_cli_trains_sdae_with_phases_and_samples_by_langevin(tmp_path, capsys):
    from kerasae.cli import main

    run = tmp_path / "sdae"
    code = main(
        [
            "train",
            "--model",
            "sdae",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--latent-dim",
            "8",
            "--param",
            "hidden_units=(32,)",
            "--param",
            "noise=gaussian",
            "--param",
            "noise_level=0.2",
            "--param",
            "pretrain_epochs=2",
            "--out",
            str(run),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "pretraining layer 1/2 (64->32)" in out and "pretraining layer 2/2 (32->8)" in out
    assert "fine-tuning" in out
    with open(run / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 2  # one row per fine-tuning epoch
    with open(run / "pretraining.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["layer"], r["epoch"]) for r in rows] == [
        ("1", "0"),
        ("1", "1"),
        ("2", "0"),
        ("2", "1"),
    ]
    config = json.loads((run / "config.json").read_text())
    assert [p["units"] for p in config["pretraining"]] == ["64->32", "32->8"]

    grid = tmp_path / "g.png"
    assert (
        main(["sample", str(run), "--langevin", "--steps", "5", "-n", "16", "--out", str(grid)])
        == 0
    )
    assert grid.stat().st_size > 0


def test_cli_refuses_langevin_without_a_score(tmp_path, capsys):
    from kerasae.cli import main

    run = tmp_path / "masked"  # a finished run folder, written without training
    run.mkdir()
    model = kerasae.create_model(
        "dae", input_shape=(8, 8, 1), latent_dim=4, hidden_units=(8,), noise="masking"
    )
    model.compile()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": "dae", "dataset": "digits"}))
    assert main(["sample", str(run), "--langevin", "-n", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no score estimate" in err and "noise=gaussian" in err
