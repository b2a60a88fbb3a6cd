"""`kerasae evaluate RUN --disentanglement` (kerasae.evaluation.disentanglement_run) and the
traversal rows named after factors (kerasae.evaluation.factor_labels): every metric of a
tiny vae on dsprites:600, a run on data without factors refused before TensorFlow, the
labels read by `kerasae sample --traverse` and `kerasae report`.

The BetaVAE and FactorVAE scores run on fewer points here than the command's (the sizes
are module constants, patched): the command's 500 + 250 points of 64 pairs render and
encode about 150,000 images. Training the run and evaluating it take about 10 s, once for
the module.
"""

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kerasae.evaluation.disentanglement_run as disentanglement_run
from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.evaluation.factor_labels import (
    INACTIVE,
    RECORD,
    dimension_factors,
    read_record,
    row_labels,
    run_dimensions,
)
from kerasae.plots import save_grid

METRICS = {
    "mig",
    "sap",
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness_train",
    "dci_informativeness_test",
    "modularity",
    "explicitness_train",
    "explicitness_test",
    "beta_vae_train",
    "beta_vae_eval",
    "factor_vae_train",
    "factor_vae_eval",
}
FACTORS = ["shape", "scale", "orientation", "posX", "posY"]


def test_each_dimension_is_named_after_its_largest_importance():
    importance = np.array(
        [
            [0.02, 0.01, 0.00, 0.90, 0.05],  # posX
            [0.01, 0.02, 0.03, 0.04, 0.01],  # under 5% of every factor: inactive
            [0.60, 0.10, 0.70, 0.03, 0.04],  # orientation (0.70) beats shape (0.60)
            [0.37, 0.87, 0.27, 0.03, 0.90],  # posY
        ]
    )
    names = dimension_factors(importance, FACTORS)
    assert names == ["posX", INACTIVE, "orientation", "posY"]
    assert row_labels(range(4), names) == [
        "z0 posX",
        f"z1 {INACTIVE}",
        "z2 orientation",
        "z3 posY",
    ]
    assert row_labels([2, 0]) == ["z2", "z0"]  # no factors: the plain labels
    # a nearly flat matrix (an untrained model: ~1/d everywhere) names no dimension
    flat = np.full((10, 5), 0.1) + np.random.default_rng(0).uniform(0, 0.05, (10, 5))
    assert dimension_factors(flat, FACTORS) == [INACTIVE] * 10
    with pytest.raises(KerasaeError, match="5 factors"):
        dimension_factors(importance[:, :3], FACTORS)


def test_the_traversal_figure_draws_the_row_labels(tmp_path):
    images = np.random.default_rng(0).random((2 * 3, 16, 16, 1), dtype=np.float32)
    plain, named = tmp_path / "plain.png", tmp_path / "named.png"
    save_grid(images, str(plain), rows=2, row_labels=row_labels(range(2)))
    save_grid(images, str(named), rows=2, row_labels=row_labels(range(2), ["orientation", "-"]))
    # the longer labels are drawn left of the grid: the tight bounding box grows
    assert Image.open(named).size[0] > Image.open(plain).size[0]


def test_only_sources_with_factors_pass_the_check(tmp_path):
    for name in ("dsprites", "dsprites:50", "kerasae:dsprites:50"):
        assert disentanglement_run.check_factor_dataset({"dataset": name}) == name
    assert disentanglement_run.check_factor_dataset({"dataset": "digits"}, "dsprites:9")
    assert "dsprites" in disentanglement_run.factor_datasets()
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 3), "float32"))
    for config, other in (({"dataset": "digits"}, None), ({}, None), ({}, str(path))):
        with pytest.raises(KerasaeError, match="has none; evaluate a run trained on dsprites"):
            disentanglement_run.check_factor_dataset(config, other)


NO_TF = """
import sys
from kerasae.cli import main
code = main(sys.argv[1:])
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "sklearn")]
sys.exit(code if code != 2 or not heavy else 3)
"""


def test_a_run_on_digits_is_refused_in_one_line_before_tensorflow(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "vae", "dataset": "digits"}))
    (run / "model.keras").write_bytes(b"")  # never loaded: refused first
    proc = subprocess.run(
        [sys.executable, "-c", NO_TF, "evaluate", str(run), "--disentanglement", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr  # 3: TensorFlow was imported first
    err = proc.stderr.strip()
    assert err.startswith("kerasae: error: --disentanglement needs data with known factors")
    assert "digits has none" in err and "\n" not in err and not proc.stdout


@pytest.fixture(scope="module")
def dsprites_run(tmp_path_factory):
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    out = str(tmp_path_factory.mktemp("disentanglement") / "vae-dsprites")
    config = TrainConfig(
        model="vae",
        dataset="dsprites:600",
        epochs=1,
        latent_dim=4,
        out=out,
        params={"hidden_units": [32]},
    )
    train(config, verbose=0)
    return out


@pytest.fixture(scope="module")
def evaluated(dsprites_run):
    """`evaluate --disentanglement --json` of the run: (its JSON object, stdout)."""
    mp = pytest.MonkeyPatch()
    for name, value in (("SCORE_TRAIN", 40), ("SCORE_EVAL", 20), ("VARIANCE_ROWS", 500)):
        mp.setattr(disentanglement_run, name, value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["evaluate", dsprites_run, "--disentanglement", "--json"])
    mp.undo()
    assert code == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.slow
def test_evaluate_json_holds_every_metric_and_what_it_used(dsprites_run, evaluated):
    result = evaluated["disentanglement"]
    assert evaluated["test_mse"] > 0  # the reconstruction metrics as always
    assert set(result["metrics"]) == METRICS
    for key, value in result["metrics"].items():
        assert isinstance(value, float) and 0.0 <= value <= 1.0, (key, value)
    # dsprites:600 splits 480 / 120: fewer than the caps, so every row
    assert (result["n_train"], result["n_test"]) == (480, 120)
    assert result["dataset"] == "dsprites:600" and result["seed"] == 0
    assert result["dci_trees"] == disentanglement_run.DCI_TREES
    assert result["scores"] == {
        "batch_size": 64,
        "num_train": 40,
        "num_eval": 20,
        "num_variance_estimate": 500,
    }
    assert result["factor_names"] == FACTORS
    assert np.asarray(result["importance_matrix"]).shape == (4, 5)
    assert result["dimensions"] == dimension_factors(result["importance_matrix"], FACTORS)
    # the record keeps the same, for the traversal and the report
    record = read_record(dsprites_run)
    assert record["metrics"] == result["metrics"] and len(record["model_sha256"]) == 64
    assert result["record"] == os.path.join(dsprites_run, RECORD)
    png = Image.open(result["traversal"])
    assert png.format == "PNG" and result["traversal"].endswith("traversal_factors.png")


@pytest.mark.slow
def test_sample_traverse_names_the_rows(dsprites_run, evaluated, tmp_path, monkeypatch):
    import kerasae.cli.sample as sample

    drawn = {}

    def capture(images, path, **kwargs):
        drawn.update(kwargs)
        return path

    monkeypatch.setattr(sample, "save_grid", capture)
    out = str(tmp_path / "t.png")
    assert main(["sample", dsprites_run, "--traverse", "--out", out, "--quiet"]) == 0
    dims = evaluated["disentanglement"]["dimensions"]
    assert drawn["row_labels"] == [f"z{d} {name}" for d, name in enumerate(dims)]
    assert run_dimensions(dsprites_run, 5) is None  # another latent size: plain labels


@pytest.mark.slow
def test_report_shows_the_record_and_flags_a_stale_one(dsprites_run, evaluated, tmp_path):
    from kerasae.report import write_report

    page = open(write_report(dsprites_run, out=str(tmp_path / "r.html"))).read()
    assert '<section id="disentanglement">' in page and "Factor of each code dimension" in page
    assert "traversal_factors" in page and "earlier model" not in page
    record = read_record(dsprites_run)
    with open(os.path.join(dsprites_run, RECORD), "w") as f:
        json.dump(dict(record, model_sha256="0" * 64), f)  # as after a --resume
    try:
        assert run_dimensions(dsprites_run, 4) is None
        page = open(write_report(dsprites_run, out=str(tmp_path / "r.html"))).read()
        assert "measured on an earlier model" in page
    finally:
        with open(os.path.join(dsprites_run, RECORD), "w") as f:
            json.dump(record, f)


def test_a_run_without_a_record_keeps_plain_labels_and_no_section(tmp_path):
    from kerasae.report_sections import disentanglement_section

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"model")
    assert run_dimensions(str(run), 4) is None and disentanglement_section(str(run)) is None
    (run / RECORD).write_text("{not json")
    with pytest.warns(UserWarning, match="not valid JSON"):
        assert run_dimensions(str(run), 4) is None
    assert "not valid JSON" in disentanglement_section(str(run))
