"""MLflow tracking (kerasae.tracking): a real `mlflow server`, the local SQLite default, a
plain `model.fit` with MLflowLogger, and the errors a user can meet (server down, no mlflow)."""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

mlflow = pytest.importorskip("mlflow", reason="pip install 'kerasae[mlflow]'")

import kerasae  # noqa: E402
from kerasae import tracking  # noqa: E402
from kerasae.callbacks.mlflow import DEFAULT_EXPERIMENT, MLflowLogger, flatten_params  # noqa: E402
from kerasae.errors import KerasaeError  # noqa: E402
from tests.helpers import run_cli  # noqa: E402

DEAD_URI = "http://127.0.0.1:1"  # a privileged port nothing listens on: refused at once
QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc):
    """The server forks workers: end its whole process group, politely first."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real tracking server on a free local port with its own SQLite store and artifacts."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job workers
    with open(root / "server.log", "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{root}/mlflow.db",
                "--artifacts-destination",
                str(root / "artifacts"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        _stop(proc)


def _artifacts(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def _only_run(client, experiment):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"experiment {experiment!r} was not created"
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return runs[0]


@pytest.mark.slow  # a server start (~10-20 s) and a CLI training run
def test_cli_train_logs_to_a_server(mlflow_server, tmp_path, monkeypatch):
    proc = run_cli(
        "train",
        "--model",
        "ae",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--latent-dim",
        "4",
        "--out",
        tmp_path / "run",
        "--track",
        "mlflow",
        "--tracking-uri",
        mlflow_server,
        "--experiment",
        "kerasae-test",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "View run" not in proc.stdout and proc.stderr == ""  # MLflow's noise silenced
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    client = mlflow.MlflowClient(mlflow_server)
    run = _only_run(client, "kerasae-test")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    params = run.data.params
    assert params["model"] == "ae" and params["latent_dim"] == "4"
    assert params["model_config.latent_dim"] == "4" and params["input_shape"] == "[8, 8, 1]"
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in loss) == [1, 2]
    where = f"run {run.info.run_id} in experiment 'kerasae-test' at {mlflow_server}"
    assert f"logged to MLflow: {where}" in proc.stdout  # the user can find it
    assert "val_loss" in run.data.metrics
    artifacts = _artifacts(client, run.info.run_id)
    for name in ("model.keras", "history.csv", "config.json", "threshold.json"):
        assert name in artifacts
    assert any(a.startswith("samples/") and a.endswith(".png") for a in artifacts)
    assert not (tmp_path / "mlruns.db").exists()  # all of it went to the server


@pytest.mark.slow
def test_logger_with_plain_fit(digits, tmp_path):
    """The Python callback on a plain model.fit; files saved after fit go up with
    log_artifacts() (MLflow accepts them on the finished run)."""
    import keras

    uri = f"sqlite:///{tmp_path}/store.db"
    folder = tmp_path / "out"
    folder.mkdir()
    x = digits[0][:128]
    model = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(16,))
    model.compile()
    logger = MLflowLogger(
        uri,
        "plain-fit",
        run_name="fit",
        params={
            "model": "ae",
            "params": {"hidden_units": [16]},
            "note": "x" * 7000,
            "unset": None,
        },
        artifacts_dir=str(folder),
    )
    model.fit(
        x,
        epochs=2,
        batch_size=64,
        validation_data=(x[:64],),
        verbose=0,
        callbacks=[keras.callbacks.CSVLogger(str(folder / "history.csv")), logger],
    )
    model.save(folder / "model.keras")
    logger.log_artifacts()
    client = mlflow.MlflowClient(uri)
    run = _only_run(client, "plain-fit")
    assert run.info.status == "FINISHED" and run.info.run_id == logger.run_id
    params = run.data.params
    assert params["model"] == "ae" and params["params.hidden_units"] == "[16]"
    assert len(params["note"]) == 6000 and "unset" not in params
    assert "epochs" not in params  # not Keras's own fit params
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
    assert "val_loss" in run.data.metrics
    assert sorted(_artifacts(client, run.info.run_id)) == ["history.csv", "model.keras"]


def _args(**given):
    base = {"track": None, "tracking_uri": None, "experiment": None, "debug": False}
    return argparse.Namespace(**{**base, **given})


@pytest.mark.slow
def test_default_uri_is_a_local_sqlite_file(tmp_path, monkeypatch):
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in QUIET.items():
        monkeypatch.setenv(key, value)
    config = TrainConfig(
        model="ae",
        epochs=1,
        latent_dim=2,
        params={"hidden_units": [16]},
        out=str(tmp_path / "run"),
    )
    callbacks = tracking.tracking_callbacks(_args(track="mlflow"), config)
    train(config, callbacks=callbacks, verbose=0)
    (logged,) = tracking.finish(callbacks)
    assert logged.endswith("at sqlite:///mlruns.db") and "run " in logged
    assert (tmp_path / "mlruns.db").is_file()
    client = mlflow.MlflowClient("sqlite:///mlruns.db")
    run = _only_run(client, DEFAULT_EXPERIMENT)
    assert run.data.params["model"] == "ae" and run.data.params["latent_dim"] == "2"
    assert "status" not in run.data.params
    assert {"model.keras", "history.csv"} <= set(_artifacts(client, run.info.run_id))


def test_unreachable_server_fails_before_training(tmp_path, capsys):
    from kerasae.cli import main

    start = time.monotonic()
    code = main(
        [
            "train",
            "--model",
            "ae",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--track",
            "mlflow",
            "--tracking-uri",
            DEAD_URI,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach MLflow at {DEAD_URI}" in lines[0], err
    assert "--tracking-uri" in lines[0]
    assert not (tmp_path / "run").exists() and "Epoch" not in out
    assert time.monotonic() - start < 30  # one try, not minutes of retries


def test_logger_errors_are_one_line():
    with pytest.raises(
        KerasaeError,
        match="cannot reach MLflow at http://127.0.0.1:1 "
        r"\(Connection refused\)",
    ):
        MLflowLogger(DEAD_URI).connect()
    with pytest.raises(KerasaeError, match="--tracking-uri needs --track mlflow"):
        tracking.tracking_callbacks(_args(tracking_uri=DEAD_URI), {})
    with pytest.raises(KerasaeError, match="--experiment needs --track mlflow"):
        tracking.tracking_callbacks(_args(experiment="x"), {})
    assert tracking.tracking_callbacks(_args(), {}) == []


def test_without_mlflow_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError
    with pytest.raises(KerasaeError, match=r"pip install 'kerasae\[mlflow\]'"):
        MLflowLogger().connect()


def test_flatten_params():
    flat = flatten_params(
        {"a": {"b": {"c": 1}}, "l": (1, 2), "s": "x", "n": None, "bad key!": True}
    )
    assert flat == {"a.b.c": "1", "l": "[1, 2]", "s": "x", "bad key_": "True"}
