"""What a newcomer sees: a quiet import, a header before the first epoch, --quiet, every
default in --help, a re-run that reuses the finished run, Ctrl-C that says how to resume,
and repeatable numbers."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import kerasae
from kerasae.cli import build_parser
from tests.helpers import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--model",
    "ae",
    "--dataset",
    "digits",
    "--latent-dim",
    "2",
    "--param",
    "hidden_units=(8,)",
]
IMPORT_AND_FIT = """
import numpy as np
import kerasae
model = kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
model.compile()
model.fit(np.random.rand(32, 8, 8, 1).astype("float32"), epochs=1, verbose=0)
"""


def _python(code, **env):
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": ROOT, **env},
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.slow
def test_import_kerasae_and_training_print_nothing_on_stderr():
    quiet = _python(IMPORT_AND_FIT)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr[-1000:]


@pytest.mark.slow
def test_tensorflow_start_up_lines_come_back_when_asked_for():
    loud = _python(IMPORT_AND_FIT, KERASAE_LOG_LEVEL="debug")  # so the hook hid them
    assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr


def test_help_shows_every_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    train_help = sub["train"].format_help().split("options:", 1)[1]
    for flag, default in (
        ("--epochs", "10"),
        ("--batch-size", "128"),
        ("--latent-dim", "16"),
        ("--seed", "0"),
        ("--strategy", "default"),
        ("--precision", "float32"),
    ):
        line = train_help[train_help.index(f"  {flag}") :].split("\n  -", 1)[0]
        assert f"default {default}" in " ".join(line.split()), (flag, line)
    assert "(default 64)" in " ".join(sub["sample"].format_help().split())
    assert "(default 16)" in " ".join(sub["compare"].format_help().split())


@pytest.mark.slow
def test_train_header_quiet_and_a_rerun_that_reuses_the_finished_run(tmp_path):
    out = tmp_path / "run"
    first = run_cli("train", *TINY, "--epochs", "2", "--out", out, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    head = first.stdout.index("kerasae train: ae on digits (1437 train / 360 test")
    assert head < first.stdout.index("Epoch 1/2")  # said before the first epoch
    for fact in ("trainable parameters", "device    CPU", "strategy default", f"run       {out}"):
        assert fact in first.stdout
    assert first.stderr == ""

    again = run_cli("train", *TINY, "--epochs", "2", "--out", out, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already holds a finished run with these settings; reusing it" in again.stdout
    assert "Epoch" not in again.stdout

    other = run_cli("train", *TINY, "--epochs", "3", "--out", out, cwd=tmp_path)
    assert other.returncode == 2 and "(epochs differ)" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1

    quiet = run_cli(
        "train", *TINY, "--epochs", "1", "--out", tmp_path / "q", "--quiet", cwd=tmp_path
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip().splitlines() == [quiet.stdout.strip()]  # the result only
    assert quiet.stdout.startswith("trained ae for 1 epoch(s)")

    verbose = run_cli(
        "train", *TINY, "--epochs", "1", "--out", tmp_path / "v", "--verbose", cwd=tmp_path
    )
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.index('Model: "encoder"') < verbose.stdout.index("12/12")  # steps


@pytest.mark.slow
def test_ctrl_c_records_interrupted_and_resume_says_where_it_starts(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kerasae", "train", *TINY, "--epochs", "500", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        # a child of a non-interactive shell may inherit SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 120
    while not state.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kerasae: interrupted after "), stderr
    assert lines[0].endswith(f"continue with: kerasae train --resume --out {out}")
    config = json.loads((out / "config.json").read_text())
    done = config["epochs_done"]
    assert config["status"] == "interrupted" and 1 <= done < 500
    assert f"after {done} of 500 epochs" in lines[0]

    resumed = run_cli("train", "--resume", "--out", out, "--epochs", str(done + 1), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"resuming {out} from epoch {done + 1} of {done + 1}")
    assert json.loads((out / "config.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_evaluate_gives_the_same_vae_loss_every_time(tmp_path):
    from kerasae.evaluation.reconstruction import evaluate
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    run = str(tmp_path / "vae")
    train(
        TrainConfig(model="vae", epochs=1, latent_dim=2, out=run, params={"hidden_units": [16]}),
        verbose=0,
    )
    losses = {evaluate(run)["test_loss"] for _ in range(2)}  # each call loads the model
    assert len(losses) == 1, losses


def test_save_creates_the_folder_and_scores_are_described(tmp_path):
    from kerasae.runs.threshold import score_description

    model = kerasae.create_model("vae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    path = tmp_path / "not" / "yet" / "model.keras"
    model.save(str(path))
    assert path.is_file()
    assert score_description(model).startswith("negative ELBO in nats")
    assert (
        score_description(
            kerasae.create_model("ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
        )
        == "mean squared reconstruction error"
    )


def test_vae_score_is_traced_once_for_every_batch_size(digits):
    model = kerasae.create_model("vae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(8,))
    model.score(digits[0][:300], batch_size=128)  # batches of 128, 128 and 44
    assert model._score_fns[4, 0].experimental_get_tracing_count() == 1  # (draws, seed)


def test_many_models_in_one_process_raise_no_retracing_notice(caplog):
    import tensorflow as tf

    from kerasae.quiet import no_false_retracing_notices

    x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    notice = (
        "5 out of the last 5 calls to <function f at 0x1> triggered tf.function "
        "retracing. Tracing is expensive ..."
    )
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        with no_false_retracing_notices():
            for _ in range(2):  # each its own train function, traced once
                model = kerasae.create_model(
                    "ae", input_shape=(8, 8, 1), latent_dim=2, hidden_units=(4,)
                )
                model.compile()
                model.fit(x, epochs=1, batch_size=32, verbose=0)
            tf.get_logger().warning(notice)  # TensorFlow's wording, as compare would see it
            tf.get_logger().warning("a real warning")
        tf.get_logger().warning(notice)  # outside the block it is shown again
    said = [r.getMessage() for r in caplog.records]
    assert said == ["a real warning", notice], said


def test_a_run_too_short_to_learn_says_how_many_epochs_would_do():
    from kerasae.cli.train_output import few_steps_note

    note = few_steps_note(1437, 128, 5)  # the digits tour's old 5 epochs: 60 steps
    assert note == (
        "only 60 training steps in all (1,437 examples, batch 128): too few to learn much; "
        "--epochs 42 gives 504"
    )
    assert few_steps_note(60000, 128, 2) is None  # 938 steps: enough
