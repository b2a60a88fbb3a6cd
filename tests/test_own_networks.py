"""Bring your own networks: `create_model(name, encoder=..., decoder=...)` for every family
built from an encoder and a decoder. Shapes are checked up front with one-line errors; the
model trains, saves to and loads from model.keras with safe_mode on, exports with parity,
and resumes from its run folder (config.json keeps the networks, serialized)."""

import json
import shutil

import keras
import numpy as np
import pytest
from keras import layers

import kerasae
from kerasae.errors import KerasaeError
from tests.helpers import run_cli

SHAPE, LATENT = (8, 8, 1), 3


def encoder(heads=1, latent=LATENT):
    x = keras.Input(SHAPE)
    h = layers.Dense(16, activation="relu")(layers.Flatten()(x))
    outs = [layers.Dense(latent, name=f"head{i}")(h) for i in range(heads)]
    return keras.Model(x, outs if heads > 1 else outs[0])


def decoder(final="sigmoid"):
    z = keras.Input((LATENT,))
    h = layers.Reshape(SHAPE)(layers.Dense(64)(layers.Dense(16, activation="relu")(z)))
    return keras.Model(z, layers.Activation(final)(h) if final else h)


@pytest.mark.parametrize(
    "name, heads",
    [("ae", 1), ("vae", 2)]  # 4-7 s each: the others in the full suite
    + [pytest.param(*f, marks=pytest.mark.slow) for f in [("dae", 1), ("rae", 1), ("aae", 1)]]
    + [pytest.param(*f, marks=pytest.mark.slow) for f in [("iwae", 2), ("vamp", 2)]],
)
def test_a_family_trains_on_the_users_networks(name, heads, digits):
    x = digits[0][:256]
    enc, dec = encoder(heads), decoder()
    model = kerasae.create_model(
        name,
        input_shape=SHAPE,
        latent_dim=LATENT,
        encoder=enc,
        decoder=dec,
        **({"disc_units": (8,)} if name == "aae" else {}),
        **({"num_pseudo_inputs": 8} if name == "vamp" else {}),
    )
    assert model.encoder is enc and model.decoder is dec
    model.compile()
    before = model.evaluate(x, verbose=0, return_dict=True)["loss"]
    model.fit(x, epochs=5, batch_size=32, verbose=0)
    assert model.evaluate(x, verbose=0, return_dict=True)["loss"] < before


@pytest.mark.slow
def test_saved_and_loaded_with_safe_mode_and_exported_with_parity(digits, tmp_path):
    from kerasae.export import export_model

    x = digits[0][:64]
    model = kerasae.create_model(
        "vae", input_shape=SHAPE, latent_dim=LATENT, encoder=encoder(2), decoder=decoder()
    )
    model.compile()
    model.fit(x, epochs=1, verbose=0)
    assert model.get_config()["encoder"]["class_name"] == "Functional"  # in its config
    model.save(tmp_path / "model.keras")
    loaded = kerasae.load_model(tmp_path / "model.keras")  # safe_mode stays on
    np.testing.assert_allclose(loaded.encode(x), model.encode(x), atol=1e-6)
    np.testing.assert_allclose(loaded.score(x), model.score(x), rtol=1e-5)
    manifest = export_model(loaded, tmp_path / "export", formats=("onnx",), real_x=x)
    assert set(manifest["verification"]) == {"encoder.onnx", "decoder.onnx", "scorer.onnx"}
    assert max(c["max_abs_diff"] for c in manifest["verification"].values()) < 1e-4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"encoder": encoder(latent=5)},
            r"the encoder must return one code of shape \(batch, 3\)",
        ),
        (
            {"decoder": keras.Sequential([keras.Input((3,)), layers.Dense(10)])},
            r"the decoder must return one tensor of shape \(batch, 8, 8, 1\)",
        ),
        ({"encoder": "not a network"}, "encoder must be a keras.Model"),
        (
            {"encoder": keras.Sequential([keras.Input((5,)), layers.Dense(3)])},
            r"the encoder cannot take inputs of shape \(8, 8, 1\)",
        ),
    ],
)
def test_a_network_of_the_wrong_shape_is_refused_in_one_line(kwargs, message):
    with pytest.raises(KerasaeError, match=message) as caught:
        kerasae.create_model("ae", input_shape=SHAPE, latent_dim=LATENT, **kwargs)
    assert "\n" not in str(caught.value)


def test_what_a_probabilistic_or_sparse_family_needs_is_named():
    with pytest.raises(KerasaeError, match=r"2 outputs \(mean and log-variance\)"):
        kerasae.create_model("vae", input_shape=SHAPE, latent_dim=LATENT, encoder=encoder(1))
    with pytest.raises(KerasaeError, match=r"end in keras.layers.Activation\('sigmoid'\)"):
        kerasae.create_model(
            "vae",
            input_shape=SHAPE,
            latent_dim=LATENT,
            encoder=encoder(2),
            decoder=decoder(final=None),
        )
    gaussian = kerasae.create_model(
        "vae",
        input_shape=SHAPE,
        latent_dim=LATENT,
        encoder=encoder(2),
        decoder=decoder(final=None),
        likelihood="gaussian",
    )
    assert gaussian.decoder_logits is None
    with pytest.raises(KerasaeError, match="sparse_ae's encoder must end in a sigmoid"):
        kerasae.create_model("sparse_ae", input_shape=SHAPE, latent_dim=LATENT, encoder=encoder(1))


def test_a_family_that_builds_its_own_networks_refuses_them():
    with pytest.raises(KerasaeError, match="unknown parameter 'encoder' for model 'sdae'"):
        kerasae.create_model("sdae", input_shape=SHAPE, encoder=encoder(1))


@pytest.mark.slow
def test_networks_from_keras_files_train_from_the_cli_and_resume(tmp_path):
    encoder().save(tmp_path / "enc.keras")
    decoder().save(tmp_path / "dec.keras")
    run = tmp_path / "run"
    args = (
        "train",
        "--model",
        "ae",
        "--dataset",
        "digits",
        "--latent-dim",
        str(LATENT),
        "--param",
        f"encoder={tmp_path / 'enc.keras'}",
        "--param",
        f"decoder={tmp_path / 'dec.keras'}",
        "--out",
        run,
        "--quiet",
    )
    result = run_cli(*args, "--epochs", "1")
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["encoder"]["class_name"] == "Functional"
    # an interrupted run: its epoch-1 checkpoint, no model.keras yet
    (run / "model.keras").unlink()
    shutil.move(tmp_path / "enc.keras", tmp_path / "moved.keras")  # resume needs the config
    result = run_cli("train", "--resume", "--out", run, "--epochs", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3 and (run / "model.keras").is_file()
