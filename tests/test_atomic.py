"""Atomic writes: a kill at any moment leaves the old file or the new one, never a torn one."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from kerasae import io
from kerasae.runs.config import TrainConfig
from kerasae.runs.folder import CONFIG
from kerasae.runs.training import train


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "config.json"
    io.write_json(path, {"version": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write('{"version": 2, "half')
            raise RuntimeError("crash mid-write")
    assert io.read_json(path) == {"version": 1}
    assert os.listdir(tmp_path) == ["config.json"]


def test_atomic_path_keeps_keras_suffix(tmp_path):
    """Keras picks the format from the suffix: the temporary name must end the same way."""
    with io.atomic_path(tmp_path / "epoch-0001.weights.h5") as tmp:
        assert tmp.endswith(".weights.h5")
        open(tmp, "w").close()


WRITER = """
import sys
sys.path.insert(0, {root!r})
from kerasae.io import write_json
print("ready", flush=True)
i = 0
while True:  # ~1 MB versions, alternating, as fast as possible
    write_json({path!r}, {{"version": i % 2, "payload": [i % 2] * 200_000}})
    i += 1
"""


@pytest.mark.slow
def test_sigkill_during_writes_never_tears_the_file(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    path = tmp_path / "state.json"
    io.write_json(path, {"version": 0, "payload": [0] * 200_000})
    root = os.path.dirname(os.path.dirname(os.path.abspath(io.__file__)))
    script = WRITER.format(root=root, path=str(path))
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        data = io.read_json(path)  # raises on a torn file
        assert data["version"] in (0, 1) and len(data["payload"]) == 200_000, f"seed {seed}"


def test_every_file_a_run_writes_is_renamed_into_place(tmp_path, monkeypatch):
    """Outside the human-only folders (TensorBoard events), no file of a run is written in
    place: each one appears through an atomic rename, so no reader sees half of it."""
    renamed = set()
    real_replace = os.replace

    def recording_replace(src, dst, *args, **kwargs):
        renamed.add(os.path.abspath(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", recording_replace)
    run = tmp_path / "run"
    train(
        TrainConfig(
            model="ae",
            epochs=2,
            batch_size=512,
            latent_dim=2,
            params={"hidden_units": (8,)},
            out=str(run),
        ),
        verbose=0,
    )
    written = set()
    for folder, dirs, names in os.walk(run):
        dirs[:] = [d for d in dirs if d != "tensorboard"]
        written.update(os.path.abspath(os.path.join(folder, n)) for n in names)
    assert written <= renamed, sorted(written - renamed)
    for must in (CONFIG, "model.keras", "history.csv", "checkpoints/state.json"):
        assert str(run / must) in written
    assert not [n for n in os.listdir(run / "checkpoints") if ".tmp" in n]
    assert json.loads((run / CONFIG).read_text())["status"] == "finished"
