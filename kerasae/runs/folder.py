"""Training runs: one folder holds everything about one run (DESIGN.md, "A run directory").

config.json     the resolved configuration (written first, updated when training ends)
model.keras     the trained model (its presence marks a finished run)
history.csv     one row per epoch: `epoch` and every logged metric
threshold.json  the anomaly threshold (`kerasae.runs.threshold`)
checkpoints/    what resuming needs
samplers/       fitted latent samplers (`kerasae.runs.samplers`)
disentanglement.json  `kerasae evaluate --disentanglement` (`kerasae.evaluation.factor_labels`)
tensorboard/    TensorBoard logs
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import time
from typing import TYPE_CHECKING

from kerasae.errors import KerasaeError
from kerasae.io import read_json
from kerasae.models.saving import load_model
from kerasae.runs.config import TrainConfig

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.models.base import Autoencoder

CONFIG, MODEL, HISTORY = "config.json", "model.keras", "history.csv"


CHECKPOINTS = "checkpoints"


def default_out(config):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = os.path.splitext(os.path.basename(os.path.normpath(config.dataset)))[0]
    return os.path.join("runs", f"{config.model.replace(':', '_')}-{data}-{stamp}")


def is_finished(run_dir):
    return os.path.isfile(os.path.join(run_dir, MODEL))


# where and how, not what, a run trains (a sampler is fitted after it, to the same model)
UNCOMPARED = ("out", "overwrite", "strategy", "sampler")


def settings_diff(run_dir, config):
    """The settings (TrainConfig fields) in which the run in `run_dir` differs from
    `config`: empty when re-running `config` would train the same model again."""
    saved = read_json(os.path.join(run_dir, CONFIG))
    diff = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in UNCOMPARED:
            continue
        wanted = json.loads(json.dumps(getattr(config, field.name)))  # tuples -> lists
        had = saved.get(field.name, field.default if field.name != "params" else {})
        if field.name == "model" and isinstance(had, str) and had.endswith(f":{wanted}"):
            continue  # saved as DIST:NAME where distributions clash
        if had != wanted:
            diff.append(field.name)
    return diff


def read_history(run_dir):
    """{column: [one float per epoch]} of a run's history.csv (empty when it has none)."""
    path = os.path.join(run_dir, HISTORY)
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {k: [_number(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):  # a blank cell (a metric missing that epoch)
        return float("nan")


def prepare_out(config, resume=False):
    """Check that the run folder can be written; clear it when --overwrite is given."""
    from kerasae.runs.checkpoints import STATE  # imports TensorFlow: only when used

    out = config.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise KerasaeError(f"--out {out} is a file, not a folder; choose another --out")
    unfinished = os.path.isfile(os.path.join(out, CHECKPOINTS, STATE))
    if not resume and is_finished(out):
        if not config.overwrite:
            raise KerasaeError(
                f"{out} already holds a finished run; pass --overwrite to "
                "replace it or choose another --out"
            )
        shutil.rmtree(out)
    elif not resume and unfinished:
        if not config.overwrite:  # silently restarting would throw its epochs away
            raise KerasaeError(
                f"{out} holds an unfinished run; pass --resume to continue "
                "it, --overwrite to start over, or choose another --out"
            )
        shutil.rmtree(out)
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise KerasaeError(
            f"cannot write to --out {out} ({exc.strerror}); choose a writable folder"
        ) from None


def resume_config(out, **overrides):
    """The TrainConfig of the run in `out` (its config.json), with `overrides` applied."""
    path = os.path.join(out, CONFIG)
    if not os.path.isfile(path):
        raise KerasaeError(
            f"{out} is not a kerasae run folder (no {CONFIG}); start it without --resume"
        )
    try:
        saved = read_json(path)
    except ValueError as exc:
        raise KerasaeError(
            f"{path} is not valid JSON ({exc}); start the run again with --overwrite"
        ) from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: v for k, v in saved.items() if k in fields}
    settings.update(
        {k: v for k, v in overrides.items() if v is not None}, out=out, overwrite=False
    )
    # a network given as a .keras file: the model's config holds it whole, so the run
    # resumes even where the file has moved
    model_config = saved.get("model_config") or {}
    settings["params"] = {
        k: model_config.get(k, v) if _network_file(v) else v
        for k, v in (settings.get("params") or {}).items()
    }
    return TrainConfig(**settings)


def _network_file(value):
    return isinstance(value, str) and value.endswith(".keras")


def load_run(run_dir: str | os.PathLike) -> tuple[dict, Autoencoder]:
    """(config dict, model) of a finished run."""
    return read_run_config(run_dir), load_model(os.path.join(run_dir, MODEL))


def read_run_config(run_dir):
    """The config dict of a finished run, read without TensorFlow (the CLI checks a run
    folder with it before importing TensorFlow); KerasaeError naming the fix otherwise."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir) or not os.path.isfile(path):
        raise KerasaeError(
            f"{run_dir} is not a kerasae run folder (no {CONFIG}); pass the "
            "--out folder of `kerasae train`"
        )
    if not is_finished(run_dir):
        raise KerasaeError(
            f"{run_dir} holds no trained model yet ({MODEL} missing); finish "
            "or resume its training first"
        )
    try:
        config = read_json(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KerasaeError(
            f"{path} is not valid JSON ({exc}); the run folder is damaged"
        ) from None
    if not isinstance(config, dict):
        raise KerasaeError(f"{path} holds no JSON object; the run folder is damaged")
    return config
