"""Crash-safe training state: atomic per-epoch checkpoints, resume, and a NaN guard.

The approach is that of preemption-tolerant training (TensorFlow's fault-tolerance
guide, Keras's `BackupAndRestore`), with two differences that make any kill safe:

* one commit point. Each epoch writes `checkpoints/epoch-NNNN.weights.h5` (model
  weights *and* every optimizer's state, since Keras saves the optimizers an
  `Autoencoder` holds as attributes), then `checkpoints/state.json` (epoch counter,
  history rows, stateful callbacks, the weights file's SHA-256), both through
  `kerasae.io.atomic_path`. Only after `state.json` names the new weights is the old
  file removed. `BackupAndRestore` writes its weights and its epoch in two steps, so a
  kill between them resumes the new weights under the old epoch counter.
* history comes from the checkpoint. `history.csv` is rewritten (atomically) from the
  rows in `state.json`, so after any number of resumes it lists each epoch once;
  `CSVLogger` in append mode would repeat the epochs done after the last checkpoint.

A callback with state that is not a function of the epoch counter exposes
`get_state() -> dict` (JSON-able) and `set_state(dict)`; its state is saved with
each checkpoint and restored before training continues.
"""

import math
import os

import keras

from kerasae.errors import KerasaeError, TrainingDivergedError
from kerasae.io import atomic_path, read_json, write_json, write_text
from kerasae.runs.runaway import runaway_message, runaway_term
from kerasae_runtime.manifest import sha256

STATE = "state.json"
FORMAT = 1


def history_columns(rows):
    """Logged names in reading order: loss, the family's terms as Keras logs them (the
    model's loss_names, then metric_names), then the same for validation (val_*)."""
    seen = list(dict.fromkeys(k for row in rows for k in row if k != "epoch"))
    train = [k for k in seen if not k.startswith("val_")]
    val = [k for k in seen if k.startswith("val_")]
    return _first(train, "loss") + _first(val, "val_loss")


def _first(keys, head):
    return [k for k in keys if k == head] + [k for k in keys if k != head]


def history_csv(rows):
    """CSV text of history rows: `epoch` counted from 1 as Keras's progress bar shows it
    (state.json keeps Keras's 0-based index), then `history_columns`."""
    keys = history_columns(rows)
    lines = [",".join(["epoch", *keys])]
    for row in rows:
        lines.append(",".join([str(row["epoch"] + 1), *(_cell(row.get(k)) for k in keys)]))
    return "\n".join(lines) + "\n"


def _cell(value):
    return "" if value is None else repr(float(value))


def history_dict(rows):
    """{metric: [one value per epoch]}, like `History.history`."""
    return {k: [row.get(k) for row in rows] for k in history_columns(rows)}


def _state_key(callbacks):
    """Stable names for stateful callbacks: class name plus occurrence number."""
    seen, out = {}, []
    for cb in callbacks:
        if hasattr(cb, "get_state") and hasattr(cb, "set_state"):
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            out.append((f"{name}#{seen[name]}", cb))
    return out


class RunCheckpoint(keras.callbacks.Callback):
    """At each epoch end: weights + optimizer state, epoch, history, callback state."""

    def __init__(self, folder, history_path, callbacks=(), rows=()):
        super().__init__()
        self.folder = folder
        self.history_path = history_path
        self.stateful = _state_key(callbacks)
        self.rows = [dict(r) for r in rows]
        self.extra_state = {}  # small JSON-able facts the resuming side compares

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch)}
        numbers = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        # Keras sorts its logs by name; the model's own order reads better (loss first)
        declared = [
            *getattr(self.model, "loss_names", ()),
            *getattr(self.model, "metric_names", ()),
        ]
        order = [*declared, *sorted(numbers)]
        row.update({k: numbers[k] for k in dict.fromkeys(order) if k in numbers})
        row.update(
            {
                f"val_{k}": numbers[f"val_{k}"]
                for k in dict.fromkeys(order)
                if f"val_{k}" in numbers
            }
        )
        row.update({k: v for k, v in numbers.items() if k not in row})
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        self.save(epoch + 1)

    def save(self, epochs_done):
        os.makedirs(self.folder, exist_ok=True)
        name = f"epoch-{epochs_done:04d}.weights.h5"
        path = os.path.join(self.folder, name)
        with atomic_path(path) as tmp:
            self.model.save_weights(tmp)
        state = {
            "format": FORMAT,
            "epoch": epochs_done,
            "weights": name,
            "sha256": sha256(path),
            "history": self.rows,
            "callbacks": {key: cb.get_state() for key, cb in self.stateful},
            **self.extra_state,
        }
        write_json(os.path.join(self.folder, STATE), state)  # the commit point
        write_text(self.history_path, history_csv(self.rows))
        for old in os.listdir(self.folder):  # only now is the previous epoch's file unneeded
            stale_tmp = old.startswith(".") and ".tmp" in old  # left by a killed writer
            if (old.endswith(".weights.h5") and old != name) or stale_tmp:
                os.remove(os.path.join(self.folder, old))


def _is_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def read_state(folder):
    """The committed checkpoint state of a run, or None when no epoch has finished."""
    path = os.path.join(folder, STATE)
    if not os.path.isfile(path):
        return None
    try:
        state = read_json(path)
        weights = os.path.join(folder, state["weights"])
        epoch = int(state["epoch"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KerasaeError(
            f"{path} is damaged ({exc}); start the run again with --overwrite"
        ) from None
    if not os.path.isfile(weights) or sha256(weights) != state.get("sha256"):
        raise KerasaeError(
            f"checkpoint {weights} is missing or does not match its checksum; "
            "start the run again with --overwrite"
        )
    state["epoch"], state["path"] = epoch, weights
    return state


def restore(model, state, first_batch, callbacks=()):
    """Load a checkpoint into a compiled model; returns the number of epochs done.

    Keras only loads optimizer state into built optimizers, and a model may own several
    (an adversarial model's critic optimizer); one train step on a real batch builds
    every one of them the way training does, and the load then overwrites all of it.
    """
    model.train_on_batch(first_batch)
    try:
        model.load_weights(state["path"])
    except (ValueError, KeyError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KerasaeError(
            f"checkpoint {state['path']} does not fit this model ({first}); "
            "start the run again with --overwrite"
        ) from None
    saved = state.get("callbacks") or {}
    for key, cb in _state_key(callbacks):
        if key in saved:
            cb.set_state(saved[key])
    return state["epoch"]


class NaNGuard(keras.callbacks.Callback):
    """Stop at the first non-finite training loss, before the epoch's checkpoint is written.

    Raising (rather than `stop_training`) matters: Keras still ends the epoch after
    `stop_training`, and the checkpoint callback would then save the broken weights.
    The message names a loss term that fell without bound on the way (`kerasae.runs.
    runaway`), whose cause is the objective, not the learning rate.
    """

    def __init__(self, epochs, checkpoint_folder):
        super().__init__()
        self.epochs = epochs
        self.folder = checkpoint_folder
        self.epoch = 0
        self.start, self.last = {}, {}  # each loss term's first and last finite value

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs or {}, f"step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs or {}, "its end")

    def _check(self, logs, where):
        terms = getattr(self.model, "loss_names", ("loss",))
        for name in terms:
            value = logs.get(name)
            if value is not None and math.isfinite(float(value)):
                self.start.setdefault(name, float(value))
                self.last[name] = float(value)
        loss = logs.get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        state = read_state(self.folder) if os.path.isdir(self.folder) else None
        kept = (
            f"the checkpoint of epoch {state['epoch']} is kept"
            if state
            else "no epoch had finished, so no checkpoint is kept"
        )
        became = f"the loss became {float(loss)} at epoch {self.epoch + 1}/{self.epochs}, {where}"
        term = runaway_term(self.start, self.last)
        if term is not None:
            raise TrainingDivergedError(
                f"{became}: {runaway_message(term)}; {kept}; fix the term, then train again"
            )
        raise TrainingDivergedError(
            f"{became}; {kept}; lower the learning rate, e.g. `--resume --learning-rate "
            f"{_lower_lr(self.model)}`"
        )


def _lower_lr(model):
    try:
        lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # a schedule: no single number to halve
        return "SMALLER"
    return f"{lr / 10:g}"
