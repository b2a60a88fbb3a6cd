"""Experiment tracking for `kerasae train --track mlflow` (the optional extra `kerasae[mlflow]`).

`tracking_callbacks` turns the CLI's --track, --tracking-uri and --experiment into a
connected `kerasae.callbacks.MLflowLogger` (a bad URI fails before training) whose params
are the run's resolved config.json; `finish` uploads what the run folder gained after fit.
"""

import dataclasses
import logging
import os
import warnings

import kerasae.moved as moved
from kerasae.callbacks.mlflow import MLflowLogger, import_mlflow
from kerasae.distribute import is_chief
from kerasae.errors import KerasaeError
from kerasae.io import read_json
from kerasae.runs.folder import CONFIG


def tracking_callbacks(args, config, run_dir=None):
    """The callbacks `--track` asks for, connected (a bad URI fails here, before training).

    `config` is the TrainConfig (or its dict); its `out`, which `kerasae.runs.train` fills
    in, is read when training begins. Call `finish(callbacks)` once `train` has returned to
    upload what it writes after fit (model.keras, threshold.json, the final config.json).
    """
    if not getattr(args, "track", None):
        for flag in ("tracking_uri", "experiment"):
            if getattr(args, flag, None) is not None:
                raise KerasaeError(f"--{flag.replace('_', '-')} needs --track mlflow")
        return []

    strategy = (
        config.get("strategy") if isinstance(config, dict) else getattr(config, "strategy", None)
    )
    if not is_chief(strategy or "default"):
        return []  # one MLflow run per training job: the chief's
    import_mlflow()
    quiet_mlflow(getattr(args, "debug", False))

    def folder():
        return run_dir or (config.get("out") if isinstance(config, dict) else config.out)

    def run_name():
        return os.path.basename(os.path.normpath(folder())) if folder() else None

    logger = MLflowLogger(
        args.tracking_uri,
        args.experiment,
        run_name=run_name,
        params=lambda: resolved_config(config, folder()),
        artifacts_dir=folder,
    )
    return [logger.connect()]


def resolved_config(config, folder):
    """The run's config.json once `train` has written it (input shape, model config...),
    else the config given."""
    path = os.path.join(folder, CONFIG) if folder else None
    if path and os.path.isfile(path):
        resolved = read_json(path)
    else:
        resolved = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    return {k: v for k, v in resolved.items() if k != "status"}  # params cannot change later


def finish(callbacks):
    """Upload what the run folder gained after fit (a no-op without an MLflowLogger);
    returns where each run was logged, one line each."""
    logged = []
    for callback in callbacks:
        if isinstance(callback, MLflowLogger):
            callback.log_artifacts()
            logged.append(
                f"logged to MLflow: run {callback.run_id} in experiment "
                f"{callback.experiment!r} at {callback.uri}"
            )
    return logged


def quiet_mlflow(debug=False):
    """MLflow's own INFO lines (database migrations) and run links are noise on a CLI."""
    if debug:
        return
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")


def __getattr__(name):  # PEP 562: what moved to kerasae.callbacks.mlflow in 0.3, deprecated
    return moved.resolve(__name__, name)
