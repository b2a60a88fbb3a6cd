"""Resume after a crash: optimizer state, epoch counter, callbacks and history come back.

In-process tests crash a run with an exception from a callback (the run folder then
looks exactly as after a kill between two epochs); `test_sigkill_*` kills a real
training process with SIGKILL at random moments and resumes it each time.
"""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasae import cli
from kerasae.errors import TrainingDivergedError
from kerasae.io import read_json
from kerasae.models.base import Autoencoder
from kerasae.models.registry import create_model, register_model
from kerasae.nets import build_decoder, build_encoder
from kerasae.runs import checkpoints
from kerasae.runs.config import TrainConfig
from kerasae.runs.folder import CONFIG, HISTORY, is_finished, resume_config
from kerasae.runs.training import train
from tests.helpers import registry_params

TINY = {"hidden_units": (8,)}
BATCH = 256  # digits: 1437 training examples -> 6 steps per epoch


class TwoOptimizerAE(Autoencoder):
    """Encoder and decoder with an optimizer each (the layout of adversarial models)."""

    def __init__(self, input_shape=(8, 8, 1), latent_dim=2, **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        self.set_networks(
            build_encoder(self.data_shape, self.latent_dim, hidden_units=(8,)),
            build_decoder(self.latent_dim, self.data_shape, hidden_units=(8,)),
        )

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.decoder_optimizer = keras.optimizers.Adam(1e-3)

    def train_step(self, data):
        x = self._inputs(data)
        with tf.GradientTape(persistent=True) as tape:
            losses = self.compute_losses(x, training=True)
        for opt, net in ((self.optimizer, self.encoder), (self.decoder_optimizer, self.decoder)):
            grads = tape.gradient(losses["loss"], net.trainable_variables)
            opt.apply_gradients(zip(grads, net.trainable_variables))
        return self._track(losses)


@pytest.fixture
def two_optimizer_ae():
    """Registered for one test only, so registry-wide tests elsewhere never see it."""
    from kerasae.models import registry

    register_model("_two_optimizer_test_ae")(TwoOptimizerAE)
    yield
    registry.MODELS.forget("_two_optimizer_test_ae")


class EpochCounter(keras.callbacks.Callback):
    """A callback with state of its own (not read off the epoch argument): it must be
    checkpointed, or a resumed run would count from zero."""

    def __init__(self):
        super().__init__()
        self.epochs_seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen += 1

    def get_state(self):
        return {"epochs_seen": self.epochs_seen}

    def set_state(self, state):
        self.epochs_seen = state["epochs_seen"]


class Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("simulated crash")


class OptimizerSteps(keras.callbacks.Callback):
    """Step counters of every optimizer the model holds, after each epoch / at the start."""

    def __init__(self):
        super().__init__()
        self.at_start, self.after = None, {}

    def steps(self):
        opts = [self.model.optimizer] + [
            getattr(self.model, name, None) for name in ("disc_optimizer", "decoder_optimizer")
        ]
        return [int(opt.iterations.numpy()) for opt in opts if opt is not None]

    def on_train_begin(self, logs=None):
        self.at_start = self.steps()

    def on_epoch_end(self, epoch, logs=None):
        self.after[epoch] = self.steps()


def history_epochs(run):
    """history.csv's epoch column (counted from 1, as Keras's progress bar shows)."""
    with open(os.path.join(run, HISTORY), newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _params(model):
    if model == "ae":
        return dict(TINY)
    if model.startswith("_"):
        return {}
    from kerasae.models.registry import get_model_class

    return {k: v for k, v in get_model_class(model).tiny_config.items() if k != "latent_dim"}


def config(run, model="ae", epochs=4, **kw):
    params = _params(model)
    return TrainConfig(
        model=model,
        epochs=epochs,
        batch_size=BATCH,
        latent_dim=2,
        params=dict(params),
        out=str(run),
        **kw,
    )


# aae: the real two-optimizer layout (autoencoder + discriminator, kerasae.models.adversarial)
@pytest.mark.parametrize(
    "model", registry_params(["ae", "_two_optimizer_test_ae", "aae"], fast=())
)
def test_resume_restores_optimizers_callbacks_and_history(tmp_path, model, two_optimizer_ae):
    run = tmp_path / "run"
    counter, crashed_steps = EpochCounter(), OptimizerSteps()
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config(run, model), callbacks=[counter, crashed_steps, Crash(at_epoch=2)], verbose=0)
    assert not is_finished(run) and history_epochs(run) == [1, 2]
    before = checkpoints.history_dict(checkpoints.read_state(run / "checkpoints")["history"])

    saved = create_model(model, input_shape=(8, 8, 1), latent_dim=2, **_params(model))
    saved.load_weights(run / "checkpoints" / "epoch-0002.weights.h5")
    seen = {}

    class Peek(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["w"] = [w.copy() for w in self.model.get_weights()]

    counter, resumed_steps = EpochCounter(), OptimizerSteps()  # fresh, as in a new process
    _, model_obj, history = train(
        resume_config(str(run)), callbacks=[counter, Peek(), resumed_steps], verbose=0, resume=True
    )
    # every optimizer (Adam moments and step counter) resumed where epoch 2 left it
    assert len(resumed_steps.at_start) == (1 if model == "ae" else 2)
    assert resumed_steps.at_start == crashed_steps.after[1] and min(crashed_steps.after[1]) > 0
    # training went on from exactly the checkpointed weights
    assert len(seen["w"]) == len(saved.get_weights())
    for a, b in zip(seen["w"], saved.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert is_finished(run) and history_epochs(run) == [1, 2, 3, 4]
    assert history["loss"][:2] == before["loss"]  # the first epochs are kept, not redone
    assert counter.epochs_seen == 4  # callback state survived the crash (2 + 2)
    assert resumed_steps.after[3] == [2 * n for n in crashed_steps.after[1]]  # 4 epochs' worth
    assert read_json(run / CONFIG)["resumed_from_epoch"] == 2


class LearningRates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.after = []

    def on_epoch_end(self, epoch, logs=None):
        self.after.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))


@pytest.mark.slow
def test_cosine_schedule_decays_to_zero_across_a_resume(tmp_path):
    from kerasae.models.saving import load_model

    run = tmp_path / "run"
    rates = LearningRates()
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(
            config(run, lr_schedule="cosine", learning_rate=2e-3),
            callbacks=[rates, Crash(at_epoch=2)],
            verbose=0,
        )
    resumed = LearningRates()
    train(resume_config(str(run)), callbacks=[resumed], verbose=0, resume=True)
    assert read_json(run / CONFIG)["lr_schedule"] == "cosine"
    # the rate after epoch e of 4 is 2e-3 * (1 + cos(pi (e + 1) / 4)) / 2, crash or not
    expected = [2e-3 * (1 + np.cos(np.pi * (e + 1) / 4)) / 2 for e in range(4)]
    np.testing.assert_allclose(rates.after + resumed.after, expected, atol=1e-9)
    saved = load_model(str(run / "model.keras"))
    assert float(keras.ops.convert_to_numpy(saved.optimizer.learning_rate)) < 1e-9


@pytest.mark.slow
def test_nan_guard_keeps_last_checkpoint_and_resume_recovers(tmp_path, capsys):
    run = str(tmp_path / "run")
    with pytest.raises(RuntimeError):
        train(config(run, epochs=3), callbacks=[Crash(at_epoch=2)], verbose=0)
    # a fresh start in the same folder would throw the two epochs away: refused
    fresh = [
        "train",
        "--model",
        "ae",
        "--latent-dim",
        "2",
        "--param",
        "hidden_units=(8,)",
        "--out",
        run,
    ]
    assert cli.main(fresh) == 2 and "--resume" in capsys.readouterr().err

    argv = ["train", "--out", run, "--resume", "--epochs", "4", "--learning-rate", "1e30"]
    assert cli.main(argv) == TrainingDivergedError.exit_code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epoch 3/4" in err[0] and "lower the learning rate" in err[0], err
    assert "checkpoint of epoch 2 is kept" in err[0]
    assert checkpoints.read_state(os.path.join(run, "checkpoints"))["epoch"] == 2
    assert read_json(os.path.join(run, CONFIG))["status"] == "diverged"
    assert not is_finished(run) and history_epochs(run) == [1, 2]

    assert cli.main(["train", "--out", run, "--resume", "--learning-rate", "1e-3"]) == 0
    assert is_finished(run) and history_epochs(run) == [1, 2, 3, 4]
    assert read_json(os.path.join(run, CONFIG))["status"] == "finished"


# ---------------------------------------------------------------------- a real SIGKILL
def _state_epoch(run):
    try:
        return read_json(os.path.join(run, "checkpoints", checkpoints.STATE))["epoch"]
    except (FileNotFoundError, ValueError):
        return 0


def _start(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "kerasae", "train", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(proc, ready, delay, timeout=240):
    """SIGKILL `proc` `delay` seconds after `ready()` turns true; False if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_to_the_full_count(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    run, epochs = str(tmp_path / "run"), 40
    proc = _start(
        "--model",
        "ae",
        "--latent-dim",
        "2",
        "--param",
        "hidden_units=(8,)",
        "--batch-size",
        "128",
        "--epochs",
        str(epochs),
        "--out",
        run,
    )
    # the acceptance case: killed right after its third epoch
    assert _kill_when(proc, lambda: _state_epoch(run) >= 3, 0.0), proc.stderr.read()
    kills = 1
    while kills < 6:
        reached = _state_epoch(run)
        # state.json is the commit point and history.csv is rewritten from it right after,
        # so a kill between the two leaves the CSV one epoch behind (never torn, never
        # duplicated); resuming rewrites it from state.json before training on
        assert not is_finished(run)
        assert history_epochs(run) in (list(range(1, reached + 1)), list(range(1, reached)))
        proc = _start("--resume", "--out", run)
        # a random moment within the next epoch or two: mid-step, mid-checkpoint, mid-CSV
        if not _kill_when(
            proc, lambda reached=reached: _state_epoch(run) > reached, rng.uniform(0, 0.4)
        ):
            break
        kills += 1
    assert kills == 6, f"run finished after only {kills} kills (seed {seed})"
    done = subprocess.run(
        [sys.executable, "-m", "kerasae", "train", "--resume", "--out", run],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert is_finished(run), f"seed {seed}"
    assert history_epochs(run) == list(range(1, epochs + 1)), f"seed {seed}"
    assert read_json(os.path.join(run, CONFIG))["status"] == "finished"
