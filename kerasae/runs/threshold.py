"""The run's anomaly threshold: threshold.json, written when training ends.

Anomaly detection by reconstruction error (Japkowicz et al. 1995; Sakurada and Yairi 2014):
the model's `score` of the training examples, read batch by batch, gives the 99th
percentile (1 % false alarms on data like the training data) and a grid of quantiles, so
`kerasae detect --percentile P` needs no second pass. `kerasae.evaluation.anomaly` uses it.
Importing it imports no TensorFlow (the CLI checks a threshold rule before importing it).
"""

import math
import os

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.io import read_json, write_json

THRESHOLD = "threshold.json"


DEFAULT_PERCENTILE = 99.0


_GRID = np.linspace(0.0, 100.0, 1001)  # stored quantiles of the training scores, every 0.1 %


# ---------------------------------------------------------------------- thresholds
def score_description(model):
    """What the model's score is, in words: its `score_description`, else the first sentence
    of an overridden `score`'s docstring (a plugin that wrote none)."""
    described = getattr(model, "score_description", None)
    if described:
        return described
    doc = " ".join((type(model).score.__doc__ or "").split())
    return doc.split(". ")[0].rstrip(".") or "model score"


def fit_threshold(scores, percentile=DEFAULT_PERCENTILE):
    """The threshold record of a set of training scores (stored as RUN_DIR/threshold.json)."""
    scores = _finite(scores, "training scores")
    _check_percentile(percentile)
    return {
        "threshold": float(np.percentile(scores, percentile)),
        "percentile": float(percentile),
        "n_train": int(len(scores)),
        "train_mean": float(np.mean(scores)),
        "train_std": float(np.std(scores)),
        "quantiles": np.percentile(scores, _GRID).tolist(),
    }


def training_scores(model, data, batch_size=256):
    """The model's scores of the training split of `data` (a kerasae dataset, read batch by
    batch) or of an array."""
    from kerasae.runs.data import read_batches, stream_scores  # TensorFlow: when used

    if hasattr(data, "batches"):
        return stream_scores(model, read_batches(data, "train", batch_size))
    return model.score(data, batch_size=batch_size)


def save_threshold(run_dir, model, data, percentile=DEFAULT_PERCENTILE):
    """Score the training data (a kerasae dataset's training split, streamed, or an array)
    and write RUN_DIR/threshold.json (atomically)."""
    record = fit_threshold(training_scores(model, data), percentile)
    record["score"] = score_description(model)
    write_json(os.path.join(run_dir, THRESHOLD), record)
    return record


def load_threshold(run_dir, model=None, config=None):
    """The run's threshold record; recomputed (and saved) for runs that predate it."""
    path = os.path.join(run_dir, THRESHOLD)
    if os.path.isfile(path):
        try:
            return read_json(path)
        except ValueError:
            raise KerasaeError(
                f"{path} is not valid JSON; delete it and it will be "
                "recomputed from the training data"
            ) from None
    if model is None or config is None:
        raise KerasaeError(f"{run_dir} has no {THRESHOLD}; pass --threshold VALUE")
    from kerasae.runs.data import open_data  # TensorFlow: only for a run without one

    return save_threshold(run_dir, model, open_data(config, scaling=config.get("scaling")))


def threshold_at_percentile(record, percentile):
    """The P-th percentile of the training scores, from the stored quantiles."""
    _check_percentile(percentile)
    return float(np.interp(percentile, _GRID, record["quantiles"]))


def check_rule(threshold=None, contamination=None, percentile=None):
    """Refuse a threshold rule that cannot apply: more than one given, or a value out of
    range (no TensorFlow, so `kerasae detect` refuses it at once)."""
    given = [
        flag
        for flag, value in (
            ("--threshold", threshold),
            ("--contamination", contamination),
            ("--percentile", percentile),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise KerasaeError(f"{' and '.join(given)} both set the threshold; pass only one")
    if threshold is not None and not math.isfinite(threshold):
        raise KerasaeError(f"--threshold must be a finite number, got {threshold}")
    if contamination is not None and not 0.0 < contamination < 1.0:
        raise KerasaeError(f"--contamination must be a fraction in (0, 1), got {contamination}")
    if percentile is not None:
        _check_percentile(percentile)


def _check_percentile(p):
    if not 0.0 <= p <= 100.0:
        raise KerasaeError(f"--percentile must be between 0 and 100, got {p}")


def _finite(scores, what):
    scores = np.asarray(scores, dtype="float64").ravel()
    if scores.size == 0:
        raise KerasaeError(f"no {what} (the data is empty)")
    if not np.isfinite(scores).all():
        raise KerasaeError(
            f"the model produced non-finite {what}; the run diverged, retrain "
            "it with a lower --learning-rate"
        )
    return scores
