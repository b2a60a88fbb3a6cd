"""Which factor of variation each code dimension captures, and the record that keeps it.

Column k of the DCI importance matrix (Eastwood & Williams 2018, "A Framework for the
Quantitative Evaluation of Disentangled Representations"; `disentanglement.dci`) holds the
share of factor k's prediction that each code dimension carries. A dimension is named
after the factor it carries the largest share of (the argmax over its row), or INACTIVE
when its share of every factor is under twice an even split over the d dimensions (2/d)
and at least MIN_IMPORTANCE: a nearly flat matrix (an untrained or entangled model) names
no dimension rather than noise. `kerasae evaluate --disentanglement`
keeps them with its metrics in RUN/disentanglement.json (RECORD), with a digest of the
model it measured; the traversal grids (`kerasae sample --traverse`, the evaluation's
own) and `kerasae report` read them from there, and ignore a record of an earlier model
(a run trained further with --resume). numpy only: no TensorFlow.
"""

import hashlib
import os
import warnings

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.io import read_json
from kerasae.runs.folder import MODEL

RECORD = "disentanglement.json"
INACTIVE = "–"  # a dimension that captures no factor
# a dimension with under 5% of every factor's importance captures none of them (a
# collapsed VAE dimension still draws a few noisy splits from the boosted trees)
MIN_IMPORTANCE = 0.05


def dimension_factors(importance, factor_names, min_importance=MIN_IMPORTANCE):
    """The name of the factor each row (code dimension) of a (d, K) importance matrix
    captures most; INACTIVE for a row whose every entry is under twice the even share
    (2/d), and at least `min_importance`."""
    importance = np.asarray(importance, dtype=np.float64)
    names = [str(name) for name in factor_names]
    if importance.ndim != 2 or importance.shape[1] != len(names):
        raise KerasaeError(
            f"the importance matrix must be (code dimensions, {len(names)} factors); "
            f"got shape {importance.shape}"
        )
    best = importance.argmax(axis=1)
    floor = max(min_importance, 2.0 / max(len(importance), 1))
    return [names[k] if importance[d, k] >= floor else INACTIVE for d, k in enumerate(best)]


def row_labels(dims, dimensions=None):
    """A traversal's row labels: `z3`, or `z3 posX` where `dimensions` (the factor of each
    code dimension, as `dimension_factors` gives them) names the dimension."""
    return [f"z{d}" if dimensions is None else f"z{d} {dimensions[d]}" for d in dims]


def model_digest(run_dir):
    """SHA-256 of the run's model file: which model a record measured."""
    digest = hashlib.sha256()
    with open(os.path.join(run_dir, MODEL), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_record(run_dir):
    """RUN/disentanglement.json as a dict; None when the run has none. KerasaeError when
    it is damaged."""
    path = os.path.join(run_dir, RECORD)
    if not os.path.isfile(path):
        return None
    try:
        record = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        record = f"is not valid JSON ({exc})"
    if not isinstance(record, dict):
        problem = record if isinstance(record, str) else "holds no JSON object"
        raise KerasaeError(
            f"{path} {problem}; delete it or measure again with `kerasae evaluate "
            f"{run_dir} --disentanglement`"
        )
    return record


def is_current(record, run_dir):
    """True when `record` measured the model the run holds now."""
    return record.get("model_sha256") == model_digest(run_dir)


def run_dimensions(run_dir, latent_dim):
    """The factor of each code dimension from the run's record, or None where the run has
    no record of its current model with `latent_dim` dimensions (a damaged one: a warning)."""
    try:
        record = read_record(run_dir)
    except KerasaeError as exc:
        warnings.warn(f"{exc}; the traversal rows are not named after factors", stacklevel=2)
        return None
    if record is None or not is_current(record, run_dir):
        return None
    dimensions = record.get("dimensions")
    if not isinstance(dimensions, list) or len(dimensions) != latent_dim:
        return None
    return [str(name) for name in dimensions]
