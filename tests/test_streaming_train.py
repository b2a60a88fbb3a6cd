"""Training, evaluation, detection, comparison and resume on streamed data (issue 20).

Small generated image folders (16x16 RGB PNGs, one file that is no image at all) and the
TFRecord files `convert-tfrecord` writes from them. No path may read a whole split into
memory: the end-to-end test forbids `arrays()` on the streamed dataset and checks that
the data object holds no array of examples.
"""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae.data import options
from kerasae.errors import KerasaeError
from kerasae.runs import data as rundata

SIZE = 16


def make_folder(path, n=60, corrupt=True, truncated=None):
    """n PNGs of a filled disc (a third in a subfolder); optionally a file that is no
    image, and (`truncated`: its index) one whose body is cut off after a valid header."""
    from PIL import Image

    rng = np.random.default_rng(0)
    os.makedirs(path / "sub", exist_ok=True)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(n):
        centre, radius = rng.uniform(4, 12, 2), rng.uniform(2, 6)
        img = np.zeros((SIZE, SIZE, 3), np.uint8)
        img[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2] = rng.integers(100, 255, 3)
        file = path / ("sub" if i % 3 == 0 else "") / f"img{i:03d}.png"
        Image.fromarray(img).save(file)
        if i == truncated:
            data = file.read_bytes()
            file.write_bytes(data[: len(data) // 2])
    if corrupt:
        (path / "broken.png").write_bytes(b"not a png at all")
    return path


def cli(capsys, *args):
    from kerasae.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def held_example_arrays(data):
    """Numeric arrays with an examples axis that the data object keeps (its file lists are
    1-D arrays of path bytes, which is fine)."""
    found, seen = [], set()

    def walk(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind in "biuf" and obj.ndim >= 2:
                found.append(obj.shape)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("kerasae"):
            walk(vars(obj))

    walk(data)
    return found


# ---------------------------------------------------------------------- fast checks
def test_an_epoch_is_one_known_length_pass_and_multiworker_steps_are_equal(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "imgs", n=40)
    data = rundata.open_data({"dataset": str(folder), "image_size": [SIZE, SIZE]})
    assert data.streaming and data.skipped == 1 and data.n_train + data.n_test == 40
    assert held_example_arrays(data) == []

    train, test, fit_kwargs, steps = rundata.fit_pipelines(data, 16, seed=3)
    assert fit_kwargs == {} and steps == -(-data.n_train // 16)
    assert int(train.cardinality()) == steps  # Keras knows the epoch's length
    assert int(test.cardinality()) == -(-data.n_test // 16)

    def rows(batches):
        return sorted(bytes(r) for b in batches.as_numpy_iterator() for r in b.reshape(len(b), -1))

    epoch1, epoch2 = rows(train), rows(train)
    assert epoch1 == epoch2 == rows(data.batches("train", 64))  # each epoch: every example once

    def order():
        return [b.reshape(len(b), -1).sum(axis=1).tolist() for b in train.as_numpy_iterator()]

    assert order() != order()  # reshuffled each epoch

    # every worker runs n_train // batch steps of an endless stream: none waits at an end
    monkeypatch.setattr("kerasae.runs.data.is_multiworker", lambda strategy=None: True)
    train, test, fit_kwargs, steps = rundata.fit_pipelines(data, 16)
    assert fit_kwargs == {"steps_per_epoch": data.n_train // 16, "validation_steps": 1}
    assert steps == data.n_train // 16
    sizes = [len(b) for b in train.take(3 * steps + 1).as_numpy_iterator()]
    assert sizes == [16] * (3 * steps + 1)  # it repeats: never runs dry, never a short batch


def test_detect_streams_a_folder_and_names_each_file(tmp_path):
    """A file that passes the header check but fails to decode mid-stream drops out
    without shifting the paths of the scores after it."""
    from PIL import Image

    from kerasae.evaluation import anomaly
    from kerasae.io import write_json
    from kerasae.models.registry import create_model

    folder = make_folder(tmp_path / "imgs", n=12, truncated=4)
    run = tmp_path / "run"
    keras.utils.set_random_seed(0)
    model = create_model("ae", input_shape=(SIZE, SIZE, 3), latent_dim=2, hidden_units=(8,))
    model.compile()
    model.save(run / "model.keras")
    write_json(
        run / "config.json",
        {
            "model": "ae",
            "dataset": str(folder),
            "image_size": [SIZE, SIZE],
            "seed": 0,
            "scaling": {"kind": "divide", "scale": 255.0},
        },
    )
    out = tmp_path / "scores.csv"
    summary = anomaly.detect(str(run), str(folder), threshold=0.05, out=str(out))
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["index", "path", "score", "is_anomaly"]
    paths = [r["path"] for r in rows]
    assert summary["n"] == len(rows) == 11 and "img004.png" not in paths
    assert "sub/img003.png" in paths and "broken.png" not in paths
    assert [int(r["index"]) for r in rows] == sorted(int(r["index"]) for r in rows)
    images = []
    for row in rows:  # each score is that file's own
        with Image.open(folder / row["path"]) as im:
            images.append(np.asarray(im, dtype="float32") / 255.0)
        assert float(row["score"]) == pytest.approx(
            float(model.score(images[-1][None])[0]), rel=1e-4
        )
        assert int(row["is_anomaly"]) == (float(row["score"]) > 0.05)
    # the model scores a tf.data pipeline of batches as it scores the array
    x = np.stack(images)
    np.testing.assert_allclose(
        model.score(tf.data.Dataset.from_tensor_slices(x).batch(4)), model.score(x), rtol=1e-5
    )


def test_image_options_are_checked_and_recorded(tmp_path, capsys):
    from kerasae.runs.config import TrainConfig

    assert options.parse_image_size("64,48") == (64, 48)
    assert options.parse_image_size("32x32") == (32, 32)
    for bad in ("64", "0,4", "a,b"):
        with pytest.raises(KerasaeError, match="--image-size"):
            options.parse_image_size(bad)
    config = TrainConfig(model="ae", image_size=[8, 8], channels=1)
    config.check()
    assert config.image_size == (8, 8)
    with pytest.raises(KerasaeError, match="--channels must be 1"):
        TrainConfig(model="ae", channels=2).check()
    with pytest.raises(SystemExit) as exit_:  # argparse: usage and one error line
        cli(capsys, "train", "--model", "ae", "--image-size", "0,4")
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "argument --image-size: must be HEIGHT,WIDTH in pixels" in err
    assert options.data_options({"image_size": [4, 5], "channels": None}) == {"image_size": (4, 5)}


def test_log_likelihood_of_a_stream_equals_that_of_the_array(digits):
    from kerasae.evaluation.likelihood import log_likelihood
    from kerasae.models.registry import create_model

    keras.utils.set_random_seed(0)
    model = create_model("vae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    x = digits[0][:16]
    whole = log_likelihood(model, x, k=8, seed=0, rows=64)  # blocks of 8 examples
    stream = tf.data.Dataset.from_tensor_slices(x).batch(5)  # batches cut across blocks
    streamed = log_likelihood(model, stream, k=8, seed=0, rows=64)
    np.testing.assert_allclose(streamed["log_px"], whole["log_px"], rtol=1e-6)
    assert streamed["n"] == 16


# ---------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_folder_train_evaluate_detect_compare_resume(tmp_path, capsys, monkeypatch):
    from kerasae.data import folders
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.folder import resume_config
    from kerasae.runs.training import train

    def whole_split(self, split):
        raise AssertionError(f"a kerasae path read the whole {split} split")

    monkeypatch.setattr(folders.StreamingDataset, "arrays", whole_split)
    folder = make_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    common = ["--image-size", f"{SIZE},{SIZE}", "--param", "filters=(4,8)"]
    code, out, err = cli(
        capsys,
        "train",
        "--model",
        "conv_ae",
        "--dataset",
        folder,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        run,
        *common,
    )
    assert code == 0, err
    assert "skipped 1 files that could not be decoded: broken.png" in err
    config = json.loads((run / "config.json").read_text())
    assert config["image_size"] == [SIZE, SIZE] and config["skipped_files"] == 1
    assert config["n_train"] + config["n_test"] == 60
    assert (
        f"({config['n_train']} train / {config['n_test']} test examples of shape "
        "16x16x3) (1 undecodable file skipped)" in out
    ), out
    steps = -(-config["n_train"] // 16)
    assert f"{steps}/{steps}" in out  # Keras knew the epoch's length

    code, out, err = cli(capsys, "evaluate", run, "--json")
    assert code == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["n_test"] == config["n_test"]
    # conv_ae's loss is the MSE: a mis-sized stream would average in an empty batch
    assert metrics["test_loss"] == pytest.approx(metrics["test_mse"], rel=1e-4)

    code, out, err = cli(capsys, "detect", run, "--data", folder, "--out", tmp_path / "s.csv")
    assert code == 0, err
    with open(tmp_path / "s.csv", newline="") as f:
        paths = [r["path"] for r in csv.DictReader(f)]
    assert len(paths) == 60 and "sub/img000.png" in paths and "broken.png" not in paths

    code, out, err = cli(
        capsys,
        "compare",
        "--dataset",
        folder,
        "--image-size",
        f"{SIZE},{SIZE}",
        "--models",
        "ae",
        "--epochs",
        "1",
        "--latent-dim",
        "4",
        "--out",
        tmp_path / "cmp",
    )
    assert code == 0, err
    with open(tmp_path / "cmp" / "comparison.csv", newline="") as f:
        table = {r["model"]: float(r["test_mse"]) for r in csv.DictReader(f)}
    assert set(table) == {"pca", "ae"} and all(0 < v < 1 for v in table.values())

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated crash")

    resumed = tmp_path / "resumed"
    with pytest.raises(RuntimeError):
        train(
            TrainConfig(
                model="conv_ae",
                dataset=str(folder),
                image_size=(SIZE, SIZE),
                epochs=3,
                batch_size=16,
                params={"filters": (4, 8)},
                out=str(resumed),
            ),
            callbacks=[Crash()],
            verbose=0,
        )
    config = resume_config(str(resumed))
    assert config.image_size == [SIZE, SIZE]  # the data is reopened the same way
    _, _, history = train(config, verbose=0, resume=True)
    assert len(history["loss"]) == 3
    saved = json.loads((resumed / "config.json").read_text())
    assert saved["resumed_from_epoch"] == 1 and saved["status"] == "finished"


@pytest.mark.slow
def test_tfrecord_run_reads_the_folder_split(tmp_path, capsys):
    folder = make_folder(tmp_path / "imgs", n=40)
    records = tmp_path / "records"
    code, out, err = cli(capsys, "convert-tfrecord", folder, records, "--shards", "3")
    assert code == 0, err
    run = tmp_path / "run"
    code, out, err = cli(
        capsys,
        "train",
        "--model",
        "ae",
        "--dataset",
        f"{records}/*.tfrecord",
        "--epochs",
        "2",
        "--latent-dim",
        "4",
        "--batch-size",
        "8",
        "--out",
        run,
    )
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    folder_data = rundata.open_data({"dataset": str(folder)})
    assert (config["n_train"], config["n_test"]) == (folder_data.n_train, folder_data.n_test)
    assert config["status"] == "finished"
    with open(run / "history.csv", newline="") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 2 and losses[1] < losses[0]
    code, out, err = cli(capsys, "evaluate", run, "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n_test"] == folder_data.n_test


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_stream_their_own_files(tmp_path):
    """Two workers on localhost, 40 files (enough to shard by file): both run the same
    steps per epoch, write their threshold (a read of the whole split outside
    tf.distribute) and end with the same history (synchronous all-reduce)."""
    folder = make_folder(tmp_path / "imgs", n=40, corrupt=False)
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    out = tmp_path / "run"
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [
            sys.executable,
            "-m",
            "kerasae",
            "train",
            "--model",
            "ae",
            "--dataset",
            str(folder),
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--latent-dim",
            "2",
            "--param",
            "hidden_units=(16,)",
            "--strategy",
            "multiworker",
            "--out",
            str(out),
        ]
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=tmp_path,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
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
    rows = [(f / "history.csv").read_text().splitlines() for f in (out, tmp_path / "run-worker1")]
    assert rows[0] == rows[1] and len(rows[0]) == 3
