"""`kerasae compare`: a pca row always, ratios to PCA, figures, run reuse, clear errors."""

import csv
import os

import pytest

from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.evaluation.comparison import resolve_models


def cli(capsys, *args):
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_resolve_models_puts_pca_first_and_expands_globs():
    assert resolve_models("ae") == ["pca", "ae"]
    assert resolve_models("ae,pca,ae") == ["pca", "ae"]
    assert "conv_ae" in resolve_models("*ae")
    with pytest.raises(KerasaeError, match="no_such_model|unknown"):
        resolve_models("no_such_model")
    with pytest.raises(KerasaeError, match="matches no registered model"):
        resolve_models("zzz*")


@pytest.mark.slow
def test_compare_digits_writes_table_and_figures(tmp_path, capsys):
    out = tmp_path / "c"
    code, stdout, err = cli(
        capsys,
        "compare",
        "--dataset",
        "digits",
        "--latent-dim",
        "8",
        "--models",
        "ae,pca",
        "--epochs",
        "3",
        "--out",
        out,
    )
    assert code == 0, err
    with open(out / "comparison.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"pca", "ae"}
    assert float(rows["pca"]["ratio_to_pca"]) == pytest.approx(1.0)
    ratio = float(rows["ae"]["test_mse"]) / float(rows["pca"]["test_mse"])
    assert float(rows["ae"]["ratio_to_pca"]) == pytest.approx(ratio)
    assert int(rows["ae"]["parameters"]) > int(rows["pca"]["parameters"]) > 0
    md = (out / "comparison.md").read_text()
    assert "| pca |" in md and "| ae |" in md and "pca" in stdout
    for png in ("comparison_mse.png", "reconstructions.png"):
        assert os.path.getsize(out / png) > 2000

    # a second call reuses both finished runs (no training); other settings are refused
    model_file = out / "ae" / "model.keras"
    mtime = model_file.stat().st_mtime_ns
    code, stdout, err = cli(
        capsys, "compare", "--latent-dim", "8", "--models", "ae", "--epochs", "3", "--out", out
    )
    assert code == 0, err
    assert "reusing" in stdout and model_file.stat().st_mtime_ns == mtime
    code, _, err = cli(
        capsys, "compare", "--latent-dim", "4", "--models", "ae", "--epochs", "3", "--out", out
    )
    assert code == 2 and "--retrain" in err and len(err.strip().splitlines()) == 1


def test_compare_user_errors_are_one_line(tmp_path, capsys):
    for args in (("--models", "nope"), ("--epochs", "0", "--models", "ae")):
        code, _, err = cli(capsys, "compare", "--out", tmp_path / "x", *args)
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "error" in err
    assert not (tmp_path / "x").exists()  # nothing half-made
