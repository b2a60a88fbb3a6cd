"""`kerasae evaluate RUN --disentanglement`: a run's codes of a factor dataset, measured.

The metrics of Locatello et al., "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations" (ICML 2019; disentanglement_lib): MIG, SAP, DCI,
modularity and explicitness (disentanglement.py) on the codes (the model's `encode`: the
posterior mean of a VAE) of up to MAX_TRAIN training rows and MAX_TEST test rows, drawn by
the seed; the BetaVAE and FactorVAE scores (disentanglement_scores.py) on observations
rendered with one factor held fixed. Sized for a CPU, smaller than disentanglement_lib's
study: DCI with DCI_TREES boosted trees per factor instead of 100 (its cost grows with the
trees and the classes: 100 trees on 4,000 dSprites codes take minutes on two cores), the
scores on SCORE_TRAIN + SCORE_EVAL points of SCORE_BATCH pairs instead of 10,000 + 5,000.
Every size is in the result.

The result, with the DCI importance matrix and the factor each dimension captures
(factor_labels.py), is kept in RUN/disentanglement.json; a generative model's latent
traversal with its rows named after those factors goes to
RUN/samples/traversal_factors.png. `check_factor_dataset` tells, before TensorFlow is
imported, whether the run's data has factors at all (a source's `factors` attribute).
"""

import dataclasses
import os
import time

import numpy as np

from kerasae.data.sources import named_datasets, resolve
from kerasae.errors import KerasaeError
from kerasae.evaluation.disentanglement import all_metrics
from kerasae.evaluation.disentanglement_scores import (
    beta_vae_score,
    encode_observations,
    factor_vae_score,
)
from kerasae.evaluation.factor_labels import (
    INACTIVE,
    RECORD,
    dimension_factors,
    model_digest,
    row_labels,
)
from kerasae.io import write_json
from kerasae.plots import is_image_shape, save_grid
from kerasae.runs.config import TrainConfig
from kerasae.runs.data import EVAL_BATCH, check_shape, open_data
from kerasae.runs.folder import load_run

MAX_TRAIN, MAX_TEST = 10_000, 5_000  # rows whose codes the metrics read (disentanglement_lib)
DCI_TREES = 10
SCORE_BATCH, SCORE_TRAIN, SCORE_EVAL = 64, 500, 250
VARIANCE_ROWS = 10_000  # FactorVAE's estimate of each dimension's variance
ENCODE_ROWS = 4096  # observations rendered and encoded at once
TRAVERSAL = os.path.join("samples", "traversal_factors.png")
MAX_ROWS = 16  # traversal rows (the dimensions that capture a factor first)
FACTOR_ATTRIBUTES = ("factors_train", "factors_test", "factor_names", "factor_sizes")


def factor_datasets():
    """The named data sources whose datasets carry factors of variation."""
    return [name for name in named_datasets() if getattr(resolve(name), "factors", False)]


def run_dataset(config, dataset=None):
    """`dataset`, else the dataset the run was trained on (TrainConfig's default if unset)."""
    default = {f.name: f.default for f in dataclasses.fields(TrainConfig)}["dataset"]
    return str(dataset or config.get("dataset") or default)


def check_factor_dataset(config: dict, dataset: str | None = None) -> str:
    """The name of the dataset to measure on; KerasaeError (one line, before TensorFlow)
    when its source declares no factors of variation."""
    name = run_dataset(config, dataset)
    if not getattr(resolve(name), "factors", False):
        known = " or ".join(factor_datasets()) or "a dataset with factors"
        raise KerasaeError(
            f"--disentanglement needs data with known factors of variation and {name} has "
            f"none; evaluate a run trained on {known} (e.g. kerasae train --dataset "
            "dsprites:20000)"
        )
    return name


def _check_factor_data(data, name):
    missing = [
        a for a in (*FACTOR_ATTRIBUTES, "sample_factors", "observations") if not hasattr(data, a)
    ]
    if missing:
        raise KerasaeError(
            f"dataset {name} declares factors but lacks {', '.join(missing)}; "
            "its data source must provide them (kerasae.data.DataSource.factors)"
        )


def _rows(n, cap, rng):
    """The sorted indices of min(n, cap) of n rows, drawn without replacement."""
    return np.sort(rng.permutation(n)[:cap]) if n > cap else np.arange(n)


def measure(
    model,
    data,
    seed: int,
    *,
    max_train: int | None = None,
    max_test: int | None = None,
    dci_trees: int | None = None,
    score_train: int | None = None,
    score_eval: int | None = None,
) -> dict:
    """Every disentanglement metric of `model`'s codes of a factor dataset `data` (what
    `evaluate_disentanglement` and benchmarks/disentanglement.py report): `metrics`
    (floats), the DCI `importance` matrix, `active_dims`, and the rows and sizes used.
    KerasaeError when the codes are not finite (a diverged model). A size left None is
    the module's (MAX_TRAIN, MAX_TEST, DCI_TREES, SCORE_TRAIN, SCORE_EVAL), read when called."""
    max_train = MAX_TRAIN if max_train is None else max_train
    max_test = MAX_TEST if max_test is None else max_test
    dci_trees = DCI_TREES if dci_trees is None else dci_trees
    score_train = SCORE_TRAIN if score_train is None else score_train
    score_eval = SCORE_EVAL if score_eval is None else score_eval
    rng = np.random.default_rng(seed)
    factors_train = np.asarray(data.factors_train)[_rows(data.n_train, max_train, rng)]
    factors_test = np.asarray(data.factors_test)[_rows(data.n_test, max_test, rng)]

    def encode(x):
        return model.encode(x, batch_size=EVAL_BATCH)

    codes = encode_observations(data, encode, factors_train, ENCODE_ROWS)
    codes_test = encode_observations(data, encode, factors_test, ENCODE_ROWS)
    metrics, importance = all_metrics(
        codes,
        factors_train,
        test=(codes_test, factors_test),
        n_estimators=dci_trees,
        seed=seed,
        with_importance=True,
    )
    sizes = {"batch_size": SCORE_BATCH, "num_train": score_train, "num_eval": score_eval}
    beta = beta_vae_score(data, encode, seed=seed, max_batch=ENCODE_ROWS, **sizes)
    factor = factor_vae_score(
        data,
        encode,
        num_variance_estimate=VARIANCE_ROWS,
        seed=seed,
        max_batch=ENCODE_ROWS,
        **sizes,
    )
    for key, score in (("beta_vae", beta), ("factor_vae", factor)):
        metrics[f"{key}_train"] = score["train_accuracy"]
        metrics[f"{key}_eval"] = score["eval_accuracy"]
    return {
        "metrics": {k: float(v) for k, v in metrics.items()},
        "importance": importance,
        "active_dims": int(factor["num_active_dims"]),
        "factors_test": factors_test,
        "n_train": len(factors_train),
        "n_test": len(factors_test),
        "dci_trees": dci_trees,
        "scores": dict(sizes, num_variance_estimate=VARIANCE_ROWS),
    }


def evaluate_disentanglement(
    run_dir: str | os.PathLike, dataset: str | None = None, seed: int | None = None
) -> dict:
    """Every disentanglement metric of a finished run on a factor dataset (default: its
    own), as a dict: `metrics` (floats in [0, 1]), what was used (dataset, seed, rows,
    sizes), the importance matrix and the factor of each dimension (`dimensions`). Also
    writes RUN/disentanglement.json and, for a generative model, the labelled traversal."""
    start = time.perf_counter()
    config, model = load_run(run_dir)
    name = check_factor_dataset(config, dataset)
    data = open_data(config, dataset, scaling=config.get("scaling"))
    _check_factor_data(data, name)
    check_shape(data, model)
    seed = int(config.get("seed", 0) if seed is None else seed)
    measured = measure(model, data, seed)
    importance = measured.pop("importance")
    factors_test = measured.pop("factors_test")
    dimensions = dimension_factors(importance, data.factor_names)
    result = {
        "dataset": data.name,
        "seed": seed,
        **measured,
        "factor_names": [str(n) for n in data.factor_names],
        "dimensions": dimensions,
        "importance_matrix": np.asarray(importance).tolist(),
    }
    result["traversal"] = _traversal(run_dir, model, data, factors_test[:1], dimensions)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["record"] = os.path.join(run_dir, RECORD)
    write_json(result["record"], dict(result, model_sha256=model_digest(run_dir)))
    return result


def _traversal(run_dir, model, data, reference, dimensions):
    """A generative model's traversal around the code of `reference` (a test row's
    factors), each row named after its factor; the path, or None for other models."""
    if not model.generative or not is_image_shape(tuple(model.data_shape)):
        return None
    # imports TensorFlow: only when drawn (the CLI's check imports this module first)
    from kerasae.callbacks.grids import traversal_images

    dims = list(range(len(dimensions)))
    if len(dims) > MAX_ROWS:  # the dimensions that capture a factor first
        dims = sorted(dims, key=lambda d: dimensions[d] == INACTIVE)[:MAX_ROWS]
    z_ref = model.encode(data.observations(reference))[0]
    rows, images = traversal_images(model, z_ref, dims=dims)
    path = os.path.join(run_dir, TRAVERSAL)
    save_grid(
        images,
        path,
        rows=rows,
        title="latent traversal over [-3, 3] around a test example; each row: the factor "
        "its dimension captures most (DCI)",
        row_labels=row_labels(dims, dimensions),
    )
    return path


def describe(result):
    """The lines `kerasae evaluate --disentanglement` prints."""
    m, s = result["metrics"], result["scores"]
    dims = ", ".join(row_labels(range(len(result["dimensions"])), result["dimensions"]))
    wrote = " and ".join(p for p in (result["record"], result["traversal"]) if p)
    return (
        f"disentanglement on {result['dataset']}: codes of {result['n_train']} train and "
        f"{result['n_test']} test examples (seed {result['seed']}), DCI with "
        f"{result['dci_trees']} trees per factor, BetaVAE and FactorVAE on "
        f"{s['num_train']} + {s['num_eval']} points of {s['batch_size']} examples; "
        f"{result['seconds']:.1f} s\n"
        f"  MIG {m['mig']:.3f}  SAP {m['sap']:.3f}  modularity {m['modularity']:.3f}  "
        f"explicitness {m['explicitness_train']:.3f} train, {m['explicitness_test']:.3f} test\n"
        f"  DCI disentanglement {m['dci_disentanglement']:.3f}  completeness "
        f"{m['dci_completeness']:.3f}  informativeness {m['dci_informativeness_train']:.3f} "
        f"train, {m['dci_informativeness_test']:.3f} test\n"
        f"  BetaVAE {m['beta_vae_train']:.3f} train, {m['beta_vae_eval']:.3f} eval  FactorVAE "
        f"{m['factor_vae_train']:.3f} train, {m['factor_vae_eval']:.3f} eval "
        f"({result['active_dims']} active dimensions)\n"
        f"  factor of each dimension: {dims}\n"
        f"wrote {wrote}\n"
    )
