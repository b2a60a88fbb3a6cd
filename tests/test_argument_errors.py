"""A mistake in a command's arguments answers at once: every command checks its flags, paths,
config files, run folders and names before it imports TensorFlow (seconds of CPU), and
says what is wrong in one line with exit code 2.

All cases run in one subprocess that never imports TensorFlow: if any command imported it
before refusing its arguments, the subprocess reports which.
"""

import json
import subprocess
import sys

import pytest

CASES = """
import contextlib, io, json, sys
from kerasae.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # the parser's own errors
            code = exc.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    out.append([code, err.getvalue().strip(), heavy[:3]])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A folder that passes for a finished run without a model a test could load."""
    run = tmp_path_factory.mktemp("run")
    (run / "config.json").write_text(json.dumps({"model": "ae", "status": "finished"}))
    (run / "model.keras").write_bytes(b"")
    return str(run)


def _cases(run, tmp):
    toml = tmp / "bad.toml"
    toml.write_text("epochs = -3\n")
    return [
        (["train", "--model", "ae", "--epochs", "-1"], "--epochs must be a positive integer"),
        (["train", "--model", "ae", "--latent-dim", "0"], "--latent-dim must be a positive"),
        (["train", "--model", "ae", "--batch-size", "0"], "--batch-size must be a positive"),
        (["train", "--model", "ae", "--precision", "float8"], "--precision"),
        (["train", "--config", str(tmp / "none.toml")], "does not exist"),
        (["train", "--config", str(toml), "--model", "ae"], "--epochs must be a positive"),
        (["train", "--model", "ae", "--dataset", str(tmp / "x.npy")], "does not exist"),
        (["train", "--model", "aee"], "unknown model 'aee'"),
        (["train", "--model", "ae", "--param", "hiden_units=3"], "did you mean hidden_units"),
        (["train", "--model", "ae", "--param", "hidden_units=abc"], "must be a list"),
        (["train", "--resume", "--out", str(tmp / "none")], "not a kerasae run folder"),
        (["evaluate", str(tmp / "none")], "not a kerasae run folder"),
        (["evaluate", run, "--k", "0"], "--k must be a positive integer"),
        (["evaluate", run, "--dataset", str(tmp / "x.csv")], "does not exist"),
        (["evaluate", run, "--disentanglement"], "needs data with known factors"),
        (["sample", run, "-n", "0"], "-n must be a positive integer"),
        (["sample", run, "--out", "x.jpg"], "must be a .png"),
        (["sample", run, "--sampler", "gmmm"], "unknown"),
        (["sample", str(tmp / "none")], "not a kerasae run folder"),
        (["detect", run, "--data", str(tmp / "x.npy")], "does not exist"),
        (["detect", run, "--data", "digits", "--contamination", "2"], "--contamination"),
        (["export", run, "--format", "onnxx"], "--format 'onnxx'"),
        (["export", run, "--opset", "3"], "--opset must be between"),
        (["export", str(tmp / "none")], "not a kerasae run folder"),
        (["fit-sampler", run, "--sampler", "gmmm"], "unknown"),
        (["compare", "--models", "aee"], "unknown model 'aee'"),
        (["compare", "--epochs", "0"], "--epochs must be a positive integer"),
        (["convert-tfrecord", str(tmp / "none"), str(tmp / "out")], "does not exist"),
        (["report", str(tmp / "none")], "not a kerasae run folder"),
    ]


def test_every_command_refuses_bad_arguments_before_tensorflow(run, tmp_path):
    cases = _cases(run, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", CASES, json.dumps([argv for argv, _ in cases])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, expect), (code, err, heavy) in zip(cases, results):
        assert code == 2, (argv, code, err)
        assert err.startswith("kerasae: error:") and "\n" not in err, (argv, err)
        assert expect in err, (argv, err)
        assert not heavy, f"{argv} imported {heavy} before refusing its arguments"
