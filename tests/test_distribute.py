"""tf.distribute: mirrored over two logical CPU devices, two local workers, and errors."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from kerasae.errors import KerasaeError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh interpreter: logical devices must be configured before TF initialises.
MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, kerasae
    from kerasae.registry import get_model_class
    from kerasae import distribute
    from kerasae.data.pipeline import make_tf_dataset
    from sklearn.datasets import load_digits

    x = (load_digits().images[:256] / 16.0).astype("float32")[..., None]

    strategies = {}  # one per kind, as in `kerasae train` (one strategy per process)

    def run(name, strategy_name, optimizer, epochs, **kwargs):
        if strategy_name not in strategies:
            strategies[strategy_name] = distribute.make_strategy(strategy_name)
        strategy = strategies[strategy_name]
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = kerasae.create_model(name, input_shape=(8, 8, 1), **kwargs)
            model.compile(optimizer=optimizer())
        ds = make_tf_dataset(x, 64, shuffle=False)
        history = model.fit(ds, epochs=epochs, verbose=0).history
        return strategy.num_replicas_in_sync, history

    # plain SGD: unlike Adam it is not invariant to the gradient's scale, so summing the
    # replicas' gradients without dividing by their count would change the trajectory
    sgd = lambda: keras.optimizers.SGD(0.5)
    one, h1 = run("ae", "default", sgd, 4, **get_model_class("ae").tiny_config)
    two, h2 = run("ae", "mirrored", sgd, 4, **get_model_class("ae").tiny_config)
    out = {"replicas": [one, two], "single": h1["loss"], "mirrored": h2["loss"]}
    for name in ("aae", "wae"):  # adversarial: two optimizers under the strategy
        if name in kerasae.list_models():
            cls = get_model_class(name)
            _, h = run(name, "mirrored", lambda: keras.optimizers.Adam(1e-3), 3,
                       **cls.tiny_config)
            out[name] = h
    json.dump(out, sys.stdout)
""")


@pytest.mark.slow
def test_mirrored_two_cpu_devices_matches_one_device(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == [1, 2]
    single, mirrored = out["single"], out["mirrored"]
    assert single[-1] < single[0]  # it trained
    assert mirrored == pytest.approx(single, rel=1e-4, abs=1e-6)
    for name in ("aae", "wae"):
        if name in out:
            losses = out[name]["loss"]
            assert all(v == v for v in losses) and losses[-1] < losses[0], (name, out[name])


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _two_workers(args, cwd):
    """Run `kerasae train ARGS --strategy multiworker` as two local workers; their outputs."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, "-m", "kerasae", "train", *args, "--strategy", "multiworker"]
        procs.append(
            subprocess.Popen(
                cmd, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        )
    results = []
    try:
        for p in procs:  # bounded: a worker waiting for a dead peer must not hang the suite
            results.append((p.wait(timeout=400), *p.communicate()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rc, _stdout, stderr in results:
        assert rc == 0, stderr[-3000:]
    return results


@pytest.mark.slow
def test_two_workers_on_localhost_train_end_to_end(tmp_path):
    out = tmp_path / "run"
    _two_workers(
        [
            "--model",
            "ae",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--latent-dim",
            "2",
            "--param",
            "hidden_units=(16,)",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    chief, other = out, tmp_path / "run-worker1"  # worker 1 never writes into the chief's run
    for folder in (chief, other):
        assert (folder / "model.keras").is_file()
        config = json.loads((folder / "config.json").read_text())
        assert config["strategy"] == "multiworker" and config["status"] == "finished"
    # synchronous data parallelism: both workers hold the same weights after every step
    rows = [(f / "history.csv").read_text().splitlines() for f in (chief, other)]
    assert rows[0] == rows[1] and len(rows[0]) == 3


@pytest.mark.slow
def test_two_workers_fit_statistics_of_a_streamed_folder(tmp_path):
    # each worker reads only its own files; rae's latent Gaussian and sdae's code ranges
    # are statistics of the codes of every worker's shard, the same on both workers
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(48):
        Image.fromarray(rng.integers(0, 256, (8, 8), np.uint8)).save(folder / f"{i:02d}.png")
    common = ["--dataset", str(folder), "--epochs", "1", "--batch-size", "8", "--latent-dim", "2"]
    _two_workers(
        [
            "--model",
            "rae",
            "--param",
            "hidden_units=(16,)",
            "--out",
            str(tmp_path / "rae"),
            *common,
        ],
        tmp_path,
    )
    _two_workers(
        [
            "--model",
            "sdae",
            "--param",
            "hidden_units=(16,)",
            "--param",
            "pretrain_epochs=1",
            "--out",
            str(tmp_path / "sdae"),
            *common,
        ],
        tmp_path,
    )
    from kerasae.runs.folder import load_run

    means = []
    for folder in (tmp_path / "rae", tmp_path / "rae-worker1"):
        config, model = load_run(str(folder))
        assert config["status"] == "finished" and model.generative
        # every worker's codes: more than one worker's shard of the training split
        assert float(model.latent_count.numpy()) > config["n_train"] / 2
        means.append(model.latent_mean.numpy())
    np.testing.assert_allclose(means[0], means[1], rtol=1e-5, atol=1e-6)
    pretraining = [
        json.loads((f / "config.json").read_text())["pretraining"]
        for f in (tmp_path / "sdae", tmp_path / "sdae-worker1")
    ]
    assert len(pretraining[0]) == 2 and all(p["loss"] for p in pretraining[0])


def test_multiworker_without_tf_config_is_a_one_line_error(monkeypatch, tmp_path):
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KerasaeError, match="needs the TF_CONFIG variable"):
        train(TrainConfig(model="ae", strategy="multiworker", out=str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()  # nothing half-made
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"index": 3}}')
    with pytest.raises(KerasaeError, match="TF_CONFIG is not valid"):
        train(TrainConfig(model="ae", strategy="multiworker", out=str(tmp_path / "r")))


def test_bad_strategy_and_precision_fail_before_training(tmp_path):
    from kerasae.runs.config import TrainConfig

    with pytest.raises(KerasaeError, match="--strategy must be one of"):
        TrainConfig(model="ae", strategy="tpu").check()
    with pytest.raises(KerasaeError, match="--precision must be one of"):
        TrainConfig(model="ae", precision="float8").check()
