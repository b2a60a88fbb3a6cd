"""Anomaly detection: thresholds, metrics, and `kerasae detect` end to end on digits vs noise."""

import csv
import json
import os

import numpy as np
import pytest

from kerasae.cli import main
from kerasae.errors import KerasaeError
from kerasae.evaluation import anomaly
from kerasae.runs import threshold
from kerasae.runs.config import TrainConfig
from kerasae.runs.training import train


def cli(capsys, *args):
    """The `kerasae` command in-process (one TensorFlow import for the whole module)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_threshold_record_and_percentiles():
    scores = np.arange(1001, dtype="float64")  # percentile p is exactly 10 * p
    record = threshold.fit_threshold(scores, percentile=99.0)
    assert record["threshold"] == pytest.approx(990.0)
    assert threshold.threshold_at_percentile(record, 50.0) == pytest.approx(500.0)
    assert threshold.threshold_at_percentile(record, 12.35) == pytest.approx(123.5)
    value, how = anomaly.choose_threshold(scores, record)
    assert value == pytest.approx(990.0) and "stored" in how
    value, _ = anomaly.choose_threshold(np.arange(100.0), record, contamination=0.1)
    assert int((np.arange(100.0) > value).sum()) == 10  # the top 10 % of the scored data
    assert anomaly.choose_threshold(scores, record, threshold=3.5)[0] == 3.5
    with pytest.raises(KerasaeError, match="pass only one"):
        anomaly.choose_threshold(scores, record, threshold=1.0, percentile=5.0)
    with pytest.raises(KerasaeError, match="--contamination"):
        anomaly.choose_threshold(scores, record, contamination=1.5)
    with pytest.raises(KerasaeError, match="non-finite"):
        threshold.fit_threshold([1.0, np.nan])


def test_ranking_metrics_match_a_hand_computed_case():
    # 3 of the 4 (anomaly, normal) pairs are ranked correctly: AUROC 0.75
    metrics = anomaly.ranking_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert metrics["auroc"] == pytest.approx(0.75)
    assert metrics["average_precision"] == pytest.approx((1.0 + 2 / 3) / 2)
    with pytest.raises(KerasaeError, match="only one class"):
        anomaly.ranking_metrics([0.1, 0.2], [1, 1])
    with pytest.raises(KerasaeError, match="one label per example"):
        anomaly.ranking_metrics([0.1, 0.2], [1, 0, 1])


def test_detect_separates_noise_from_digits(tmp_path, digits, capsys):
    run = tmp_path / "run"
    train(TrainConfig(model="ae", dataset="digits", epochs=3, out=str(run)), verbose=0)
    record = json.loads((run / "threshold.json").read_text())
    assert record["percentile"] == 99.0 and record["threshold"] > 0

    raw = digits[0][:300] * 16.0  # raw units of the training data (0..16)
    noise = np.random.default_rng(1).uniform(0, 16, size=(100, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "x.npy", np.concatenate([raw, noise]))
    np.savetxt(tmp_path / "y.csv", np.r_[np.zeros(300), np.ones(100)], fmt="%d")
    out = tmp_path / "det" / "scores.csv"
    code, stdout, err = cli(
        capsys,
        "detect",
        run,
        "--data",
        tmp_path / "x.npy",
        "--labels",
        tmp_path / "y.csv",
        "--out",
        out,
        "--json",
    )
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["auroc"] >= 0.95, summary
    assert summary["threshold"] == pytest.approx(record["threshold"])
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 400 and set(rows[0]) == {"index", "score", "is_anomaly"}
    flagged = np.array([int(row["is_anomaly"]) for row in rows])
    assert flagged[300:].mean() > 0.9 and flagged[:300].mean() < 0.2
    for png in (summary["histogram_png"], summary["roc_png"]):
        assert os.path.getsize(png) > 1000

    # contamination flags exactly that fraction of the scored data
    code, stdout, err = cli(
        capsys,
        "detect",
        run,
        "--data",
        tmp_path / "x.npy",
        "--contamination",
        "0.25",
        "--out",
        tmp_path / "c.csv",
    )
    assert code == 0, err
    assert "100 flagged" in stdout
    assert "contamination 0.25: the top 25.0% of the scored data" in stdout

    # user errors: one line, exit code 2
    np.save(tmp_path / "bad.npy", np.full((5, 4, 4, 1), 5.0, dtype="float32"))
    for args in (
        ("--data", tmp_path / "bad.npy"),
        ("--data", tmp_path / "x.npy", "--threshold", "1", "--percentile", "5"),
        ("--data", tmp_path / "x.npy", "--labels", tmp_path / "missing.csv"),
    ):
        code, _, err = cli(capsys, "detect", run, *args)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "error" in err


def test_detect_on_tabular_csv(tmp_path):
    rng = np.random.default_rng(0)
    # normal rows live near a 2-d plane in 6-d; anomalies do not
    basis = rng.normal(size=(2, 6))
    normal = rng.normal(size=(300, 2)) @ basis * 3 + 50
    lines = ["a,b,c,d,e,f"] + [",".join(f"{v:.4f}" for v in row) for row in normal]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    train(
        TrainConfig(model="pca", dataset=str(tmp_path / "train.csv"), latent_dim=2, out=str(run)),
        verbose=0,
    )
    test = np.concatenate(
        [
            rng.normal(size=(40, 2)) @ basis * 3 + 50,
            rng.uniform(normal.min(0), normal.max(0), size=(40, 6)),
        ]
    )
    lines = ["a,b,c,d,e,f"] + [",".join(f"{v:.4f}" for v in row) for row in test]
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    np.save(tmp_path / "y.npy", np.r_[np.zeros(40), np.ones(40)].astype("int64"))
    summary = anomaly.detect(
        str(run),
        str(tmp_path / "test.csv"),
        labels=str(tmp_path / "y.npy"),
        out=str(tmp_path / "s.csv"),
    )
    assert summary["n"] == 80 and summary["auroc"] > 0.95, summary
