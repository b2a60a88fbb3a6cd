"""`train`: the staged training of one run, from its config to a finished run folder."""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras
import tensorflow as tf

import kerasae.distribute as distribute
from kerasae.callbacks.annealing import BetaAnnealing
from kerasae.callbacks.grids import default_grid_callbacks
from kerasae.io import atomic_path, write_json
from kerasae.models.registry import create_model
from kerasae.runs import checkpoints
from kerasae.runs import data as rundata
from kerasae.runs.folder import (
    CHECKPOINTS,
    CONFIG,
    HISTORY,
    MODEL,
    default_out,
    prepare_out,
)
from kerasae.runs.samplers import check_for_model, fit_after_training
from kerasae.runs.threshold import save_threshold
from kerasae.version import __version__

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.models.base import Autoencoder
    from kerasae.runs.config import TrainConfig


def train(
    config: TrainConfig,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: str | int = "auto",
    resume: bool = False,
    on_start: Callable[[dict], None] | None = None,
) -> tuple[str, Autoencoder, dict]:
    """Train `config.model` on `config.dataset`; returns (run_dir, model, history dict).

    The model is built, compiled and fitted inside `config.strategy`'s scope (the global
    batch is split over its replicas) under the `config.precision` dtype policy.
    `on_start(facts, model)` is called once before the first epoch with what `run_facts`
    lists and the built model (`kerasae train` prints them as its header). Ctrl-C raises
    `RunInterrupted` once the
    run folder records the interruption.
    """
    config.check()
    # before any TensorFlow op: a multi-worker strategy must configure the runtime first
    with distribute.training_context(config.strategy, config.precision, config.batch_size):
        config.out = distribute.worker_out(config.out or default_out(config), config.strategy)
        return _train(config, callbacks, verbose, resume, on_start)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: config.json says `interrupted`; `resume_command` continues it."""

    def __init__(self, out, epochs_done, epochs):
        super().__init__(out)
        self.out, self.epochs_done, self.epochs = out, epochs_done, epochs
        self.resume_command = f"kerasae train --resume --out {shlex.quote(out)}"


def _train(config, callbacks=(), verbose="auto", resume=False, on_start=None):
    """`train` inside the strategy's scope and the precision policy.

    With `resume`, continue the unfinished run in `config.out` (see `resume_config`) from
    its last checkpoint: weights, optimizers, epoch counter, callbacks and history.
    """

    data = rundata.open_data(config)  # `train` has checked the config and set config.out
    params = {"latent_dim": config.latent_dim, **config.params}
    keras.utils.set_random_seed(config.seed)
    model = create_model(config.model, input_shape=data.input_shape, **params)
    config.params = storable(config.params)  # a brought network, as config.json keeps it
    config.model = model.registered_name  # DIST:NAME where several distributions clash
    callbacks = (*beta_callbacks(config, model), *callbacks)
    if config.sampler:  # e.g. `prior` on a model without one: refused before training
        check_for_model(config.sampler, model)
    prepare_out(config, resume)  # only once the config is known to be valid: nothing half-made
    out = config.out
    resolved = {
        **dataclasses.asdict(config),
        "input_shape": list(data.input_shape),
        "scaling": data.scaling,
        "n_train": int(data.n_train),
        "n_test": int(data.n_test),
        "model_config": model.get_config(),
        "status": "running",
        "kerasae_version": _version(),
    }
    if getattr(data, "skipped", 0):
        resolved["skipped_files"] = int(data.skipped)
    write_json(os.path.join(out, CONFIG), resolved)

    # streamed batches (kerasae.runs.data): memory does not grow with the dataset
    train_ds, test_ds, fit_kwargs, per_epoch = rundata.fit_pipelines(
        data, config.batch_size, seed=config.seed
    )
    # the fast path's steps per execution, capped at an epoch (Keras's progress bar overruns)
    model.compile(
        optimizer=_optimizer(config, model, per_epoch),
        steps_per_execution=min(model.fast_steps_per_execution(), per_epoch),
    )
    ckpt_dir = os.path.join(out, CHECKPOINTS)
    extra = [
        *default_grid_callbacks(model, out, data),
        *model.run_callbacks(out, data),
        *callbacks,
    ]
    state = checkpoints.read_state(ckpt_dir) if resume else None
    done = 0
    # a first batch read here, not from train_ds: under multiworker that one is a worker's
    # shard, which only tf.distribute can read (kerasae.runs.data.read_batches)
    if state is not None:
        done = checkpoints.restore(model, state, data.head("train", config.batch_size), extra)
        if (
            config.learning_rate not in (None, state.get("learning_rate"))
            and config.lr_schedule == "constant"
        ):  # a schedule was built with the new rate
            model.optimizer.learning_rate.assign(config.learning_rate)  # after a NaN
    checkpoint = checkpoints.RunCheckpoint(
        ckpt_dir, os.path.join(out, HISTORY), extra, rows=state["history"] if state else ()
    )
    checkpoint.extra_state = {"learning_rate": config.learning_rate}
    if done:
        resolved["resumed_from_epoch"] = done
    run_callbacks = [
        checkpoints.NaNGuard(config.epochs, ckpt_dir),  # first: it must veto the checkpoint
        *extra,
        checkpoint,
        keras.callbacks.TensorBoard(os.path.join(out, "tensorboard"), write_graph=False),
    ]
    if on_start is not None:
        on_start(run_facts(config, data, model, done if resume else None), model)
    if not done and model.has_hook("initialize") and rundata.is_multiworker():
        model.run_initialize(data.head("train", config.batch_size), config.batch_size)
    start = time.perf_counter()
    try:
        if done < config.epochs:
            model.fit(
                train_ds,
                epochs=config.epochs,
                initial_epoch=done,
                validation_data=test_ds,
                callbacks=run_callbacks,
                verbose=verbose,
                **fit_kwargs,
            )

        save_threshold(out, model, data)  # what `kerasae detect` uses by default
        # model.keras marks a finished run, so it comes after everything a finished run needs
        with atomic_path(os.path.join(out, MODEL)) as tmp:
            model.save(tmp)
    except checkpoints.TrainingDivergedError as exc:
        resolved.update(status="diverged", error=str(exc))
        write_json(os.path.join(out, CONFIG), resolved)
        raise
    except KeyboardInterrupt:
        committed = checkpoints.read_state(ckpt_dir)  # not rows: an epoch may be half-saved
        saved = committed["epoch"] if committed else 0
        resolved.update(status="interrupted", epochs_done=saved)
        write_json(os.path.join(out, CONFIG), resolved)
        raise RunInterrupted(out, saved, config.epochs) from None
    seconds = time.perf_counter() - start
    resolved.update(model.run_summary())  # e.g. sdae's per-layer pretraining
    resolved.update(status="finished", train_seconds=round(seconds, 3))
    failed = None
    if config.sampler:  # after model.keras: a failed fit keeps the trained model
        failed = fit_after_training(out, model, data, config, resolved)
    write_json(os.path.join(out, CONFIG), resolved)
    if failed:
        raise failed
    return out, model, checkpoints.history_dict(checkpoint.rows)


def storable(params):
    """`params` as config.json keeps them: a network the user brought (encoder=,
    decoder=) in Keras's serialized form, which the model rebuilds on `--resume`."""
    return {
        k: keras.saving.serialize_keras_object(v) if isinstance(v, keras.Layer) else v
        for k, v in params.items()
    }


def run_facts(config, data, model, resumed_from=None):
    """What a run trains, on what and where: the header `kerasae train` prints."""
    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.get_strategy()
    return {
        "model": config.model,
        "dataset": data.name,
        "n_train": int(data.n_train),
        "n_test": int(data.n_test),
        "skipped": int(getattr(data, "skipped", 0) or 0),
        "input_shape": tuple(data.input_shape),
        "latent_dim": model.latent_dim,
        "parameters": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        "out": config.out,
        "device": f"GPU x{len(gpus)}" if gpus else "CPU",
        "strategy": config.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "precision": config.precision,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate or model.default_learning_rate,
        "lr_schedule": config.lr_schedule,
        "resumed_from": resumed_from,
    }


def _optimizer(config, model, steps_per_epoch):
    """Adam at --learning-rate with --lr-schedule over all of the run's steps (a resume with
    more --epochs stretches the decay); None: the model's own default optimizer."""
    if config.lr_schedule == "constant" and config.learning_rate is None:
        return None
    return adam(
        config.learning_rate or model.default_learning_rate,
        config.lr_schedule,
        config.epochs * steps_per_epoch,
    )


def adam(learning_rate, schedule="constant", total_steps=None):
    """Adam at `learning_rate`: constant, or (`schedule="cosine"`) decayed to 0 along a
    cosine over `total_steps` optimizer steps (Loshchilov and Hutter, ICLR 2017)."""
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    return keras.optimizers.Adam(learning_rate)


def beta_callbacks(config, model):
    """The BetaAnnealing `--beta-schedule` asks for, checked before the run folder is made."""
    if not config.beta_schedule:
        return []

    annealing = BetaAnnealing(config.beta_schedule, config.beta_warmup, config.beta_cycles)
    annealing.check_model(model)
    return [annealing]


def _version():
    return __version__
