"""A table of bad inputs: each exits 2 with one line on stderr naming the problem and the fix.

No traceback, and no run folder left behind that looks finished. The table runs
in-process (`kerasae.cli.main`) to stay fast; `test_real_process_*` run a few cases
through a real `python -m kerasae` to prove nothing else reaches the terminal.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from kerasae import cli
from kerasae.runs.config import TrainConfig
from kerasae.runs.folder import is_finished
from kerasae.runs.training import train

TRAIN = [
    "train",
    "--model",
    "ae",
    "--latent-dim",
    "2",
    "--param",
    "hidden_units=(8,)",
    "--epochs",
    "1",
]


def _png(path, size):
    from PIL import Image

    Image.fromarray(np.zeros(size, dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every bad file once, plus a finished run of `ae` and damaged copies of it."""
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    good = rng.random((20, 8)).astype("float32")
    np.save(d / "nan.npy", np.where(np.arange(8) == 3, np.nan, good))
    np.save(d / "inf.npy", np.where(np.arange(8) == 3, np.inf, good))
    np.save(d / "empty.npy", np.zeros((0, 8), dtype="float32"))
    np.save(d / "rank1.npy", good[:, 0])
    np.save(d / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.savez(d / "pickled.npz", x=np.array([{"a": 1}, {"b": 2}], dtype=object))
    (d / "garbage.npy").write_bytes(b"this is not numpy data")
    np.savetxt(d / "table.csv", good, delimiter=",")  # rank 2: fine for ae, not for conv_ae
    (d / "words.csv").write_text("a,b\n1,2\n3,hello\n")
    (d / "ragged.csv").write_text("1,2,3\n4,5\n")
    (d / "notes.txt").write_text("hello")
    (d / "mixed").mkdir()
    _png(d / "mixed" / "a.png", (8, 8))
    _png(d / "mixed" / "b.png", (9, 8))
    (d / "no_images").mkdir()
    (d / "no_images" / "readme.txt").write_text("no images here")
    (d / "not_a_run").mkdir()
    (d / "a_file").write_text("")
    (d / "bad.toml").write_text("model = \n")
    (d / "unknown.toml").write_text('model = "ae"\nlearning_rat = 0.1\n')

    run = d / "run_ae"
    train(
        TrainConfig(
            model="ae",
            epochs=1,
            batch_size=512,
            latent_dim=2,
            params={"hidden_units": (8,)},
            out=str(run),
        ),
        verbose=0,
    )
    shutil.copytree(run, d / "corrupt_run")
    (d / "corrupt_run" / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    shutil.copytree(run, d / "foreign_run")
    foreign = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    foreign.save(d / "foreign_run" / "model.keras")
    shutil.copytree(run, d / "no_config_run")
    os.remove(d / "no_config_run" / "config.json")
    shutil.copytree(run, d / "unsafe_run")  # a kerasae model whose config smuggles code
    _smuggle_lambda(run / "model.keras", d / "unsafe_run" / "model.keras", str(d / "PWNED"))
    with zipfile.ZipFile(d / "fake.keras", "w") as zf:
        zf.writestr("config.json", '{"class_name": "Lambda", "registered_name": "evil>x"}')
    return d


def _smuggle_lambda(src, dst, marker):
    import json

    evil = keras.saving.serialize_keras_object(lambda x: open(marker, "w") and x)
    with zipfile.ZipFile(src) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(items["config.json"])
    config["config"]["activation"] = evil
    items["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in items.items():
            zf.writestr(name, data)


# (id, argv with {d} = the files folder and {out} = a fresh run folder, words the message names)
CASES = [
    ("unknown-model", ["train", "--model", "aee", "--out", "{out}"], "did you mean ae"),
    ("no-model", ["train", "--out", "{out}"], "--model"),
    ("unknown-dataset", [*TRAIN, "--dataset", "mnits", "--out", "{out}"], "unknown dataset"),
    ("missing-path", [*TRAIN, "--dataset", "{d}/nope.npy", "--out", "{out}"], "does not exist"),
    ("npy-nan", [*TRAIN, "--dataset", "{d}/nan.npy", "--out", "{out}"], "NaN"),
    ("npy-inf", [*TRAIN, "--dataset", "{d}/inf.npy", "--out", "{out}"], "infinite"),
    ("npy-empty", [*TRAIN, "--dataset", "{d}/empty.npy", "--out", "{out}"], "no examples"),
    ("npy-rank1", [*TRAIN, "--dataset", "{d}/rank1.npy", "--out", "{out}"], "shape"),
    ("npy-strings", [*TRAIN, "--dataset", "{d}/strings.npy", "--out", "{out}"], "numeric"),
    ("npz-pickle", [*TRAIN, "--dataset", "{d}/pickled.npz", "--out", "{out}"], "numeric"),
    (
        "npy-garbage",
        [*TRAIN, "--dataset", "{d}/garbage.npy", "--out", "{out}"],
        "is not a NumPy file",
    ),  # a text file named .npy: not "pickled data"
    (
        "conv-on-table",
        [
            "train",
            "--model",
            "conv_ae",
            "--latent-dim",
            "2",
            "--dataset",
            "{d}/table.csv",
            "--out",
            "{out}",
        ],
        "image data",
    ),
    ("mixed-images", [*TRAIN, "--dataset", "{d}/mixed", "--out", "{out}"], "mixed sizes"),
    ("no-images", [*TRAIN, "--dataset", "{d}/no_images", "--out", "{out}"], "no images"),
    ("csv-words", [*TRAIN, "--dataset", "{d}/words.csv", "--out", "{out}"], "not numeric"),
    ("csv-ragged", [*TRAIN, "--dataset", "{d}/ragged.csv", "--out", "{out}"], "columns"),
    ("unsupported-file", [*TRAIN, "--dataset", "{d}/notes.txt", "--out", "{out}"], "unsupported"),
    (
        "param-unknown",
        [*TRAIN, "--param", "hiden_units=(4,)", "--out", "{out}"],
        "did you mean hidden_units",
    ),
    ("param-type", [*TRAIN, "--param", "hidden_units=wide", "--out", "{out}"], "must be a list"),
    (
        "param-bool",
        ["train", "--model", "pca", "--param", "whiten=maybe", "--out", "{out}"],
        "true or false",
    ),
    ("param-syntax", [*TRAIN, "--param", "hidden_units", "--out", "{out}"], "KEY=VALUE"),
    ("param-loss", [*TRAIN, "--param", "loss=l1", "--out", "{out}"], "'mse' or 'bce'"),
    (
        "spatial-code-latent",
        [
            "train",
            "--model",
            "dae",
            "--param",
            "architecture=conv",
            "--param",
            "code=spatial",
            "--latent-dim",
            "5",
            "--epochs",
            "1",
            "--out",
            "{out}",
        ],
        "multiple of 4",
    ),
    ("lr-schedule", [*TRAIN, "--lr-schedule", "step", "--out", "{out}"], "invalid choice"),
    ("latent-zero", [*TRAIN, "--latent-dim", "0", "--out", "{out}"], "positive"),
    ("latent-negative", [*TRAIN, "--latent-dim", "-3", "--out", "{out}"], "positive"),
    ("latent-too-big", [*TRAIN, "--latent-dim", "64", "--out", "{out}"], "undercomplete"),
    ("epochs-zero", [*TRAIN, "--epochs", "0", "--out", "{out}"], "--epochs"),
    ("batch-negative", [*TRAIN, "--batch-size", "-1", "--out", "{out}"], "--batch-size"),
    ("lr-zero", [*TRAIN, "--learning-rate", "0", "--out", "{out}"], "--learning-rate"),
    ("epochs-not-int", [*TRAIN, "--epochs", "two", "--out", "{out}"], "invalid int"),
    ("config-missing", ["train", "--config", "{d}/nope.toml", "--out", "{out}"], "does not exist"),
    ("config-bad-toml", ["train", "--config", "{d}/bad.toml", "--out", "{out}"], "TOML"),
    (
        "config-unknown-key",
        ["train", "--config", "{d}/unknown.toml", "--out", "{out}"],
        "learning_rat",
    ),
    ("out-is-a-file", [*TRAIN, "--out", "{d}/a_file"], "is a file"),
    ("out-unwritable", [*TRAIN, "--out", "{d}/a_file/run"], "cannot write"),
    ("out-finished", [*TRAIN, "--out", "{d}/run_ae"], "--overwrite"),
    ("resume-not-a-run", ["train", "--resume", "--out", "{d}/not_a_run"], "not a kerasae run"),
    ("resume-no-out", ["train", "--resume"], "--out"),
    (
        "resume-with-flags",
        ["train", "--resume", "--out", "{d}/run_ae", "--model", "pca"],
        "drop --model",
    ),
    ("evaluate-not-a-run", ["evaluate", "{d}/not_a_run"], "not a kerasae run"),
    ("evaluate-missing", ["evaluate", "{d}/nowhere"], "not a kerasae run"),
    ("evaluate-no-config", ["evaluate", "{d}/no_config_run"], "not a kerasae run"),
    ("evaluate-corrupt-keras", ["evaluate", "{d}/corrupt_run"], "not a readable .keras"),
    ("evaluate-foreign-keras", ["evaluate", "{d}/foreign_run"], "not a kerasae model"),
    ("evaluate-unsafe-keras", ["evaluate", "{d}/unsafe_run"], "lambda"),
    ("evaluate-other-shape", ["evaluate", "{d}/run_ae", "--dataset", "{d}/table.csv"], "shape"),
    ("sample-not-a-run", ["sample", "{d}/not_a_run"], "not a kerasae run"),
    ("sample-not-generative", ["sample", "{d}/run_ae", "--out", "{out}/s.png"], "not generative"),
    ("sample-n-zero", ["sample", "{d}/run_ae", "-n", "0"], "positive"),
    ("export-not-a-run", ["export", "{d}/not_a_run"], "not a kerasae run"),
    (
        "detect-not-a-run",
        ["detect", "{d}/not_a_run", "--data", "{d}/table.csv"],
        "not a kerasae run",
    ),
    ("info-unknown-model", ["info", "vea"], "unknown model"),
]


def _argv(argv, d, out):
    return [a.format(d=d, out=out) for a in argv]


@pytest.mark.parametrize("argv,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, argv, words):
    out = tmp_path / "run"
    before = sorted(os.listdir(files / "run_ae"))
    try:
        code = cli.main(_argv(argv, files, out))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("kerasae: error: ") and "Traceback" not in err
    assert words in lines[0], lines[0]
    assert not is_finished(out) and not os.path.exists(out / "config.json")
    assert sorted(os.listdir(files / "run_ae")) == before  # the finished run is untouched


def test_table_is_large_enough():
    assert len(CASES) >= 25


def test_safe_loading_refuses_foreign_and_unregistered_files(files):
    from kerasae import load_model
    from kerasae.errors import KerasaeError

    for name, words in (
        ("foreign_run/model.keras", "not a kerasae model"),
        ("corrupt_run/model.keras", "not a readable"),
        ("fake.keras", "not a kerasae model"),
    ):
        with pytest.raises(KerasaeError, match=words):
            load_model(str(files / name))
    # safe_mode stays on: the lambda in the config is refused, never run
    with pytest.raises(KerasaeError, match="lambda"):
        load_model(str(files / "unsafe_run" / "model.keras"))
    assert not (files / "PWNED").exists()


@pytest.mark.slow
@pytest.mark.parametrize("case", ["npy-nan", "evaluate-corrupt-keras"])
def test_real_process_prints_one_line(files, tmp_path, case):
    argv = _argv(dict((c[0], c[1]) for c in CASES)[case], files, tmp_path / "run")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}  # even with TF's own logging on
    proc = subprocess.run(
        [sys.executable, "-m", "kerasae", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
