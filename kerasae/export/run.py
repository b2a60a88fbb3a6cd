"""Export a finished `kerasae train` run: its model, threshold, scaling and sampler, as
files (`export_run`) or laid out for a server (`export_layout`: triton, tfserving, ...).

A layout is built from a finished, verified export, so a server only ever sees files that
passed the parity check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from typing import Any

import numpy as np

from kerasae.errors import KerasaeError
from kerasae.export import quantize
from kerasae.export.layouts import _check_name, _refuse_other_folder
from kerasae.export.registry import exporter
from kerasae.export.registry import names as exporter_names
from kerasae.export.write import export_model
from kerasae.runs.data import open_data
from kerasae.runs.folder import load_run
from kerasae.runs.samplers import resolve_sampler
from kerasae.runs.threshold import load_threshold


def export_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    sampler: str | None = None,
    **options: Any,
) -> dict:
    """Export a finished `kerasae train` run (default out: RUN_DIR/export). sampler: the
    name of a sampler fitted in the run, or "prior"; None: the one `kerasae sample` uses
    (the run's default sampler, else the model's prior)."""

    config, model = load_run(run_dir)
    # as `kerasae sample` resolves it; fails before the slow part
    sampler = resolve_sampler(run_dir, config, model, sampler, required=False)
    real_x, data = None, None
    try:
        data = open_data(config, scaling=config.get("scaling"))  # read as the run read it
        real_x = data.head("test", 64)  # a few real inputs: the data is never loaded whole
    except KerasaeError as exc:  # the data moved: verification still runs on random inputs
        if options.get("int8"):
            raise KerasaeError(
                f"--int8 calibrates on the run's training data and is measured on its "
                f"test data, which is unavailable ({exc}); export without --int8"
            ) from None
        warnings.warn(
            f"the run's data is unavailable ({exc}); verifying on random inputs only", stacklevel=2
        )
    if real_x is not None and tuple(real_x.shape[1:]) != tuple(model.data_shape):
        raise KerasaeError(
            f"the run's data has shape {real_x.shape[1:]} but the model "
            f"expects {tuple(model.data_shape)}; the run folder is inconsistent"
        )
    # the run folder's name only: no path of the training machine travels with a model
    metadata = {
        "run": {
            "dataset": config.get("dataset"),
            "name": os.path.basename(os.path.normpath(run_dir)),
        },
        "scaling": config.get("scaling") or {"kind": "identity"},
    }
    if real_x is not None:
        real_x = np.asarray(real_x, dtype="float32")

    if options.get("int8"):  # the run's own data: calibrated on training, measured on test
        options["int8_data"] = (
            data.head("train", quantize.CALIBRATION_EXAMPLES),
            data.head("test", quantize.EVALUATION_EXAMPLES),
        )
    threshold = load_threshold(run_dir, model, config)  # detect's, so the runtime agrees
    return export_model(
        model,
        out or os.path.join(run_dir, "export"),
        real_x=real_x,
        metadata=metadata,
        threshold=threshold,
        sampler=sampler,
        **options,
    )


def export_layout(
    run_dir: str | os.PathLike,
    layout: str,
    out: str | os.PathLike | None = None,
    name: str | None = None,
    settings: dict | None = None,
    **options: Any,
) -> dict:
    """Export a run as `export_run` does (into a temporary folder), then lay it out for a
    server at `out` (default RUN_DIR/LAYOUT). settings: the layout's own options
    (triton: max_batch_size, max_queue_delay_us; tfserving: version). Returns the
    manifest with "layout": {"kind", "out", "models"} added (not written to disk).
    Generation is kerasae-runtime's, not the server's: each model's copy of the manifest
    holds an array sampler (prior, gaussian, gmm) whole, but a learned sampler's
    sampler.onnx stays out of the layout (a warning says so)."""
    module = exporter(layout)
    if module.kind != "layout":
        raise KerasaeError(
            f"{layout!r} is an export format, not a layout; choose one of "
            f"{', '.join(exporter_names('layout'))}"
        )
    settings = settings or {}
    unknown = sorted(set(settings) - set(module.settings))
    if unknown:
        raise KerasaeError(f"{', '.join(unknown)} does not apply to a {layout} layout")
    out = os.path.abspath(out or os.path.join(run_dir, layout))
    _refuse_other_folder(out, layout, module.is_layout)  # before the slow export
    if name is not None:
        _check_name(name)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", suffix=".export", dir=parent)
    try:
        export_dir = os.path.join(tmp, "export")
        manifest = export_run(run_dir, out=export_dir, formats=module.formats, **options)
        models = module.write_repository(export_dir, out, name=name, **settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prior = manifest.get("prior") or {}
    if prior.get("file"):  # array samplers ride in each model's kerasae_manifest.json
        warnings.warn(
            f"the {layout} layout serves the parts only; the {prior['sampler']} "
            f"sampler's {prior['file']} is not in it: generate with "
            "kerasae-runtime from a plain export (kerasae export RUN --format onnx)",
            stacklevel=2,
        )
    return {**manifest, "layout": {"kind": layout, "out": out, "models": models}}
