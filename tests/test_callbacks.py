"""Beta annealing, image-grid callbacks, latent traversals, and their CLI (`train`, `sample`)."""

import glob
import math
import os

import numpy as np
import pytest

import kerasae
from kerasae.callbacks.annealing import BetaAnnealing, beta_at
from kerasae.callbacks.grids import (
    LatentTraversal,
    ReconstructionGrid,
    SampleGrid,
    traversal_codes,
)
from kerasae.cli import main
from kerasae.errors import KerasaeError

TINY = {"latent_dim": 2, "hidden_units": (16,)}


def test_linear_schedule_formula():
    assert [beta_at(e, "linear", 4.0, warmup_epochs=2) for e in range(5)] == [0, 2, 4, 4, 4]
    for e in range(12):
        assert beta_at(e, "linear", 1.5, warmup_epochs=7) == pytest.approx(1.5 * min(1, e / 7))


def test_sigmoid_schedule_formula():
    def logistic(u):
        return 1 / (1 + math.exp(-10 * (u - 0.5)))

    values = [beta_at(e, "sigmoid", 2.0, warmup_epochs=8) for e in range(11)]
    for e, v in enumerate(values):
        u = min(1.0, e / 8)
        assert v == pytest.approx(2.0 * (logistic(u) - logistic(0)) / (logistic(1) - logistic(0)))
    assert values[0] == 0.0 and values[8:] == [2.0] * 3
    assert values[4] == pytest.approx(1.0)  # symmetric ramp: half-way at half the warm-up
    assert all(a < b for a, b in zip(values[:8], values[1:9]))


def test_cyclical_schedule_formula():
    # Fu et al. 2019: T = 12 epochs, M = 3 cycles (period 4), R = 0.5 of each rising
    values = [beta_at(e, "cyclical", 1.0, cycles=3, ratio=0.5, total_epochs=12) for e in range(12)]
    assert values == [0, 0.5, 1, 1] * 3
    with pytest.raises(KerasaeError, match="total number of epochs"):
        beta_at(0, "cyclical", 1.0)


def test_annealing_drives_the_compiled_training_step(digits):
    """The variable changes under the compiled train step: the logged beta and the loss
    (= reconstruction + beta * KL, batch by batch) both follow the schedule."""
    x = digits[0][:128]
    model = kerasae.create_model("beta_vae", input_shape=(8, 8, 1), beta=4.0, **TINY)
    model.compile()
    history = model.fit(
        x, epochs=4, batch_size=64, verbose=0, callbacks=[BetaAnnealing("linear", warmup_epochs=2)]
    ).history
    assert history["beta"] == [0.0, 2.0, 4.0, 4.0]
    assert history["loss"][0] == pytest.approx(history["reconstruction"][0], rel=1e-6)
    np.testing.assert_allclose(
        history["loss"],
        np.add(history["reconstruction"], np.multiply(history["beta"], history["kl"])),
        rtol=1e-4,
    )
    history = model.fit(
        x, epochs=4, batch_size=64, verbose=0, callbacks=[BetaAnnealing("cyclical", cycles=2)]
    ).history
    assert history["beta"] == [0.0, 4.0, 0.0, 4.0]


def test_annealing_refuses_models_without_beta_and_bad_settings(digits):
    model = kerasae.create_model("ae", input_shape=(8, 8, 1), **TINY)
    model.compile()
    with pytest.raises(KerasaeError, match="no beta"):
        model.fit(digits[0][:32], epochs=1, verbose=0, callbacks=[BetaAnnealing()])
    with pytest.raises(KerasaeError, match="--beta-schedule must be one of"):
        BetaAnnealing("cosine")
    with pytest.raises(KerasaeError, match="--beta-warmup must be a positive integer"):
        BetaAnnealing("linear", warmup_epochs=0)


def test_traversal_codes_vary_one_dimension_per_row():
    z_ref = np.array([0.5, -1.0, 2.0], "float32")
    codes = traversal_codes(z_ref, steps=5, span=3.0, dims=[2, 0])
    assert codes.shape == (10, 3)
    np.testing.assert_allclose(codes[:5, 2], np.linspace(-3, 3, 5))
    np.testing.assert_allclose(codes[:5, :2], np.tile(z_ref[:2], (5, 1)))
    np.testing.assert_allclose(codes[5:, 0], np.linspace(-3, 3, 5))
    np.testing.assert_allclose(codes[5:, 1:], np.tile(z_ref[1:], (5, 1)))


@pytest.mark.slow
def test_grid_callbacks_write_pngs_on_schedule_and_to_tensorboard(digits, tmp_path):
    x = digits[0][:64]
    model = kerasae.create_model("vae", input_shape=(8, 8, 1), **TINY)
    model.compile()
    folder, logs = tmp_path / "samples", tmp_path / "tb"
    callbacks = [
        SampleGrid(str(folder), every=2, n=9, log_dir=str(logs)),
        ReconstructionGrid(x, str(folder), every=2, n=4),
        LatentTraversal(str(folder), every=5, x_ref=x, steps=5),
    ]
    model.fit(x, epochs=3, batch_size=32, verbose=0, callbacks=callbacks)
    names = sorted(os.path.basename(p) for p in glob.glob(str(folder / "*.png")))
    assert names == [
        "reconstructions_epoch002.png",
        "reconstructions_epoch003.png",
        "samples_epoch002.png",
        "samples_epoch003.png",
        "traversal_epoch003.png",
    ]  # every N epochs, and always after the last
    assert glob.glob(str(logs / "images" / "events.out.tfevents.*"))
    with pytest.raises(KerasaeError, match="every must be a positive integer"):
        SampleGrid(str(folder), every=0)


@pytest.mark.slow
def test_cli_train_with_annealing_then_sample_and_traverse(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "--model",
            "beta_vae",
            "--dataset",
            "digits",
            "--latent-dim",
            "2",
            "--param",
            "beta=4",
            "--param",
            "hidden_units=(16,)",
            "--beta-schedule",
            "linear",
            "--beta-warmup",
            "2",
            "--epochs",
            "4",
            "--out",
            str(run),
        ]
    )
    assert rc == 0
    header, *rows = (run / "history.csv").read_text().splitlines()
    columns = header.split(",")
    assert "kl" in columns and "reconstruction" in columns
    assert [float(r.split(",")[columns.index("beta")]) for r in rows] == [0.0, 2.0, 4.0, 4.0]
    assert glob.glob(str(run / "samples" / "samples_epoch*.png"))
    assert glob.glob(str(run / "samples" / "traversal_epoch*.png"))

    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "-n", "16", "--out", str(grid)]) == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trav = tmp_path / "trav.png"
    assert (
        main(
            [
                "sample",
                str(run),
                "--traverse",
                "--steps",
                "5",
                "--reference",
                "0",
                "--out",
                str(trav),
            ]
        )
        == 0
    )
    assert trav.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2 latent dimensions x 5 steps" in capsys.readouterr().out

    assert main(["sample", str(run), "--traverse", "--steps", "1"]) == 2
    assert (
        main(
            [
                "train",
                "--model",
                "ae",
                "--dataset",
                "digits",
                "--beta-schedule",
                "linear",
                "--out",
                str(tmp_path / "ae"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("kerasae: error: model 'ae' has no beta")
    assert not (tmp_path / "ae").exists()  # refused before the run folder was made


def test_grids_enlarge_small_images_and_label_traversal_rows(tmp_path):
    from PIL import Image

    from kerasae.plots import MIN_CELL_PX, save_grid

    images = np.random.default_rng(0).random((64, 8, 8, 1))  # 8x8 digits
    path = save_grid(images, str(tmp_path / "g.png"))
    width, height = Image.open(path).size
    assert width >= 8 * MIN_CELL_PX and height >= 8 * MIN_CELL_PX  # 8 cells of >= 64 px
    labelled = save_grid(images[:18], str(tmp_path / "t.png"), rows=2, row_labels=["z0", "z1"])
    plain = save_grid(images[:18], str(tmp_path / "p.png"), rows=2)
    # the labels take a margin on the left: the same grid grows wider
    assert Image.open(labelled).size[0] > Image.open(plain).size[0]
