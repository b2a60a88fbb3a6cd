"""Anomaly detection by reconstruction error (Japkowicz et al. 1995; Sakurada and Yairi 2014).

An autoencoder trained on normal data reconstructs normal examples well and strange ones
badly, so the model's `score` (mean squared reconstruction error; the negative ELBO for a
VAE, An and Cho 2015) ranks examples by how anomalous they are. A threshold turns the
ranking into decisions; it comes from one of three places:

    threshold.json   written into the run when training ends (`kerasae.runs.threshold`):
                     the 99th percentile of the training scores
    --percentile P   the P-th percentile of the training scores (stored quantiles)
    --contamination  flag the top RATE fraction of the data being scored (scikit-learn's
                     meaning of contamination, as in IsolationForest)
    --threshold V    an explicit value

With labels (1 = anomaly) AUROC and average precision measure the ranking itself,
independent of any threshold.
"""

import csv
import io
import os

import numpy as np

from kerasae.data.scoring import scored_examples
from kerasae.errors import KerasaeError
from kerasae.io import load_numpy, write_text
from kerasae.plots import _pyplot, save_figure
from kerasae.runs.folder import load_run
from kerasae.runs.threshold import (
    _finite,
    check_rule,
    load_threshold,
    score_description,
    threshold_at_percentile,
)


def choose_threshold(scores, record=None, threshold=None, contamination=None, percentile=None):
    """(threshold, how it was chosen) from at most one of the three options."""
    check_rule(threshold, contamination, percentile)
    if threshold is not None:
        return float(threshold), "given"
    if contamination is not None:
        value = float(np.quantile(scores, 1.0 - contamination))
        return (
            value,
            f"contamination {contamination:g}: the top {contamination:.1%} of the scored data",
        )
    if record is None:
        raise KerasaeError(
            "no threshold stored for this run; pass --threshold, --percentile or --contamination"
        )
    if percentile is not None:
        return threshold_at_percentile(
            record, percentile
        ), f"{percentile:g}th percentile of the training scores"
    return float(
        record["threshold"]
    ), f"{record['percentile']:g}th percentile of the training scores (stored at training)"


# ---------------------------------------------------------------------- metrics
def ranking_metrics(scores, labels):
    """AUROC and average precision of scores against labels (1 = anomaly)."""
    # slow to import: only where it is used
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = _binary_labels(labels, len(scores))
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "n_anomalies": int(labels.sum()),
        "n_normal": int((1 - labels).sum()),
    }


def _binary_labels(labels, n):
    labels = np.asarray(labels).ravel()
    if len(labels) != n:
        raise KerasaeError(
            f"--labels has {len(labels)} entries but the data has {n} "
            "examples; give one label per example"
        )
    if not np.isin(labels, (0, 1)).all():
        raise KerasaeError("--labels must hold only 0 (normal) and 1 (anomaly)")
    labels = labels.astype("int64")
    if labels.min() == labels.max():
        raise KerasaeError(
            "--labels holds only one class; AUROC needs both normal (0) and anomalous (1) examples"
        )
    return labels


def load_labels(path):
    """One 0/1 label per example from .npy, .npz (first array), .csv or .txt."""
    if not os.path.isfile(path):
        raise KerasaeError(f"labels file {path} does not exist; check the path")
    try:
        if path.lower().endswith((".npy", ".npz")):
            loaded = load_numpy(path)
            if not isinstance(loaded, np.ndarray):
                with loaded:
                    loaded = loaded[loaded.files[0]]
            return np.asarray(loaded).ravel()
        values = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                cell = line.strip().split(",")[-1].strip()
                if cell:
                    values.append(cell)
        try:
            float(values[0])
        except (ValueError, IndexError):
            values = values[1:]  # a header line
        return np.asarray([float(v) for v in values])
    except (ValueError, OSError) as exc:
        raise KerasaeError(f"labels file {path} cannot be read as 0/1 numbers ({exc})") from None


# ---------------------------------------------------------------------- the detect command
def detect(
    run_dir,
    data,
    threshold=None,
    contamination=None,
    percentile=None,
    labels=None,
    out=None,
    batch_size=256,
):
    """Score every example of DATA with the run's model; write scores CSV and figures.

    Returns a summary dict (threshold, how it was chosen, counts, paths, AUROC/AP with
    labels). `out` defaults to RUN_DIR/detect/scores.csv; figures go next to it.
    """
    config, model = load_run(run_dir)
    examples = scored_examples(data, config, batch_size)  # streamed, in file order
    if examples.shape != tuple(model.data_shape):
        raise KerasaeError(
            f"{data} has examples of shape {examples.shape} but the model "
            f"was trained on {tuple(model.data_shape)}; score data of that shape"
        )
    y = load_labels(labels) if labels else None
    if y is not None:
        _binary_labels(y, examples.n)
    out = out or os.path.join(run_dir, "detect", "scores.csv")
    if not out.lower().endswith(".csv"):
        raise KerasaeError(f"--out {out} must be a .csv file")
    record = None
    if threshold is None and contamination is None:
        record = load_threshold(run_dir, model, config)
    rows, scores = examples.score(model)
    scores = _finite(scores, "scores")
    if y is not None:
        y = y[rows]  # a file that failed to decode mid-stream has no score and no label
    value, how = choose_threshold(scores, record, threshold, contamination, percentile)
    flagged = scores > value
    stem = os.path.splitext(out)[0]
    write_scores(out, rows, scores, flagged, examples.keys)
    summary = {
        "run": run_dir,
        "model": config["model"],
        "data": str(data),
        "n": int(len(rows)),
        "score": score_description(model),
        "threshold": value,
        "threshold_from": how,
        "n_flagged": int(flagged.sum()),
        "scores_csv": out,
        "histogram_png": plot_histogram(scores, value, y, stem + "_hist.png"),
    }
    if y is not None:
        summary.update(ranking_metrics(scores, y))
        summary["roc_png"] = plot_roc(scores, y, summary["auroc"], stem + "_roc.png")
    return summary


def write_scores(path, rows, scores, flagged, keys=None):
    """The scores CSV: index (row in file order), the file's relative path for an image
    folder, score, is_anomaly (written atomically)."""

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", *(["path"] if keys is not None else []), "score", "is_anomaly"])
    for i, s, f in zip(rows, scores, flagged):
        writer.writerow([int(i), *([keys[i]] if keys is not None else []), f"{s:.8g}", int(f)])
    write_text(path, buf.getvalue())


def plot_histogram(scores, threshold, labels, path):
    """Score histogram with the threshold; normal and anomalous apart when labels exist."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.histogram_bin_edges(scores, bins=min(60, max(10, len(scores) // 10)))
    if labels is None:
        ax.hist(scores, bins=bins, color="tab:blue", alpha=0.8, label="scores")
    else:
        labels = np.asarray(labels).astype(bool)
        ax.hist(scores[~labels], bins=bins, color="tab:blue", alpha=0.6, label="normal (0)")
        ax.hist(scores[labels], bins=bins, color="tab:red", alpha=0.6, label="anomaly (1)")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("examples")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_roc(scores, labels, auroc, path):
    from sklearn.metrics import roc_curve  # slow to import: only where it is used

    fpr, tpr, _ = roc_curve(np.asarray(labels).astype(int), scores)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, color="tab:red", label=f"AUROC {auroc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)
