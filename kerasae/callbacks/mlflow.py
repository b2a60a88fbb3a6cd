"""`MLflowLogger`: a Keras callback that logs a training run to MLflow (the `mlflow` extra).

The run's parameters (the resolved config, flattened) when training begins, every logged
metric at each epoch's end (step = 1-based epoch), and the run folder's files when training
ends. mlflow is imported only when a logger connects, so kerasae works without it.
"""

import atexit
import contextlib
import dataclasses
import json
import os
import re
import time

import keras

from kerasae.errors import KerasaeError

DEFAULT_URI = "sqlite:///mlruns.db"  # a local store in the working folder: needs no server


DEFAULT_EXPERIMENT = "kerasae"


MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


MAX_KEY_LENGTH = 250


RUN_FILES = ("model.keras", "history.csv", "config.json", "threshold.json")


RUN_FOLDERS = ("samples", "export")


# One try, briefly: MLflow's default 7 retries with backoff take minutes on a dead server.
FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


_UNREACHABLE = re.compile(
    r"Failed to establish|Connection refused|Max retries exceeded|"
    r"timed out|Name or service not known|Connection aborted",
    re.I,
)


def import_mlflow():
    try:
        import mlflow  # optional: the mlflow extra
    except ImportError as exc:
        if exc.name == "mlflow":
            raise KerasaeError(
                "MLflow tracking needs the mlflow package; pip install 'kerasae[mlflow]'"
            ) from None
        raise KerasaeError(
            f"mlflow failed to import ({exc}); reinstall it: pip install "
            "--force-reinstall 'kerasae[mlflow]'"
        ) from None
    return mlflow


def default_uri():
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def flatten_params(config, prefix=""):
    """{dotted key: text} from a (nested) dict or dataclass: None skipped, lists as JSON,
    values cut to MLflow's 6000 characters, keys to its allowed characters."""
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_params(value, name + "."))
        elif value is not None:
            text = (
                json.dumps(value, default=str) if isinstance(value, (list, tuple)) else str(value)
            )
            flat[_key(name)] = text[:MAX_PARAM_LENGTH]
    return flat


def _key(name):
    return re.sub(r"[^\w.\- /]", "_", str(name))[:MAX_KEY_LENGTH]


def _value(x):
    return x() if callable(x) else x


@contextlib.contextmanager
def _fail_fast():
    saved = {k: os.environ.get(k) for k in FAIL_FAST}
    os.environ.update(FAIL_FAST)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _reason(exc):
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\n]+('[^'\n]*')?)", text)
    if errno:
        return errno.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:200]


class MLflowLogger(keras.callbacks.Callback):
    """Logs a training run to MLflow.

    tracking_uri: a server (http://HOST:PORT) or a store; default $MLFLOW_TRACKING_URI or
        sqlite:///mlruns.db. With none given, a run already active (`mlflow.start_run()`)
        is reused and left open; otherwise the logger starts a run and ends it.
    params: a dict or dataclass (or a callable returning one, read when training begins).
    artifacts_dir: a run folder (or a callable returning one, read when training ends):
        its model.keras, history.csv, config.json, threshold.json, samples/ and export/.
    Files written after `fit` returns (a model saved then) are uploaded by `log_artifacts()`
    called afterwards; MLflow accepts them on a finished run.
    """

    def __init__(
        self, tracking_uri=None, experiment=None, run_name=None, params=None, artifacts_dir=None
    ):
        super().__init__()
        self.tracking_uri, self.experiment = tracking_uri, experiment or DEFAULT_EXPERIMENT
        # not self.params: Keras sets that to fit's own (epochs, steps)
        self.run_name, self.run_params, self.artifacts_dir = run_name, params, artifacts_dir
        self.uri = tracking_uri or default_uri()
        self.run_id = None
        self._client = self._experiment_id = self._active_run_id = None
        self._owns_run = False
        self._uploaded = {}  # path -> (mtime, size) last uploaded

    def connect(self):
        """Reach the tracking store now, so that a bad URI fails before any training."""
        if self._client is not None:
            return self
        mlflow = import_mlflow()
        active = mlflow.active_run()
        if active is not None and self.tracking_uri in (None, mlflow.get_tracking_uri()):
            self.uri, self._active_run_id = mlflow.get_tracking_uri(), active.info.run_id
        with _fail_fast():
            client = self._call(mlflow.MlflowClient, self.uri)
            if self._active_run_id is not None:
                self._call(client.get_run, self._active_run_id)
            else:
                experiment = self._call(client.get_experiment_by_name, self.experiment)
                if experiment is None:
                    self._experiment_id = self._call(client.create_experiment, self.experiment)
                elif experiment.lifecycle_stage == "deleted":
                    raise KerasaeError(
                        f"MLflow experiment {self.experiment!r} at {self.uri} was deleted; "
                        f"restore it (mlflow experiments restore --experiment-id "
                        f"{experiment.experiment_id}) or pass another --experiment"
                    )
                else:
                    self._experiment_id = experiment.experiment_id
        self._client = client
        return self

    def _call(self, fn, *args, **kwargs):
        """An MLflow call; its failure becomes one line naming the URI and the fix."""
        try:
            return fn(*args, **kwargs)
        except KerasaeError:
            raise
        except Exception as exc:
            if _UNREACHABLE.search(str(exc)):
                raise KerasaeError(
                    f"cannot reach MLflow at {self.uri} ({_reason(exc)}); start the server "
                    "(mlflow server --host 127.0.0.1 --port 5000) or pass another "
                    f"--tracking-uri (the default {DEFAULT_URI} needs none)"
                ) from None
            raise KerasaeError(f"MLflow at {self.uri} failed: {_reason(exc)}") from None

    def on_train_begin(self, logs=None):
        from mlflow.entities import Param  # optional: the mlflow extra

        self.connect()
        if self._active_run_id is not None:
            self.run_id = self._active_run_id
        else:  # a new run for each fit
            run = self._call(
                self._client.create_run, self._experiment_id, run_name=_value(self.run_name)
            )
            self.run_id, self._owns_run, self._uploaded = run.info.run_id, True, {}
            atexit.register(self._end, "FAILED", True)  # fit raised: never left RUNNING
        params = _value(self.run_params)
        if params:
            entries = [Param(k, v) for k, v in flatten_params(params).items()]
            self._call(self._client.log_batch, self.run_id, params=entries)

    def on_epoch_end(self, epoch, logs=None):
        from mlflow.entities import Metric  # optional: the mlflow extra

        now, metrics = int(time.time() * 1000), []
        for key, value in (logs or {}).items():
            try:
                metrics.append(Metric(_key(key), float(value), now, epoch + 1))
            except (TypeError, ValueError):
                continue  # not a scalar
        if metrics:
            self._call(self._client.log_batch, self.run_id, metrics=metrics)

    def on_train_end(self, logs=None):
        self.log_artifacts()
        self._end("FINISHED")

    def log_artifacts(self):
        """Upload the run folder's files that are new or changed since the last upload."""
        folder = _value(self.artifacts_dir)
        if not folder or self.run_id is None:
            return
        for path, artifact_path in run_artifacts(folder):
            stamp = os.stat(path)
            if self._uploaded.get(path) != (stamp.st_mtime_ns, stamp.st_size):
                self._call(self._client.log_artifact, self.run_id, path, artifact_path)
                self._uploaded[path] = (stamp.st_mtime_ns, stamp.st_size)

    def _end(self, status, quiet=False):
        if not self._owns_run:
            return
        self._owns_run = False
        atexit.unregister(self._end)
        try:
            self._call(self._client.set_terminated, self.run_id, status)
        except KerasaeError:
            if not quiet:
                raise


def run_artifacts(folder):
    """(path, artifact folder or None) for a run folder's RUN_FILES and RUN_FOLDERS."""
    out = [
        (os.path.join(folder, name), None)
        for name in RUN_FILES
        if os.path.isfile(os.path.join(folder, name))
    ]
    for name in RUN_FOLDERS:
        for root, dirs, files in os.walk(os.path.join(folder, name)):
            dirs.sort()
            rel = os.path.relpath(root, folder).replace(os.sep, "/")
            out += [(os.path.join(root, f), rel) for f in sorted(files)]
    return out
