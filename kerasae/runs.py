"""Training runs: one folder holds everything about one run (DESIGN.md, "A run directory").

    config.json     the resolved configuration (written first, updated when training ends)
    model.keras     the trained model (its presence marks a finished run)
    history.csv     one row per epoch: `epoch` and every logged metric
    checkpoints/    what resuming needs
    tensorboard/    TensorBoard logs
"""
import dataclasses
import math
import os
import shutil
import time

from kerasae.errors import KerasaeError
from kerasae.io import atomic_path, read_json, write_json

CONFIG, MODEL, HISTORY = "config.json", "model.keras", "history.csv"
CHECKPOINTS = "checkpoints"
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass
class TrainConfig:
    """Training settings (flax-style: one dataclass); model kwargs live in `params`."""

    model: str
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int = 128
    latent_dim: int = 16
    learning_rate: float = None  # None: the model's default_learning_rate
    lr_schedule: str = "constant"  # or cosine: decay to 0 over the run (Loshchilov and Hutter)
    params: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    out: str = None
    beta_schedule: str = None  # KL annealing for models with a beta: linear, cyclical, sigmoid
    beta_warmup: int = 10  # epochs of the linear/sigmoid ramp from 0 to the model's beta
    beta_cycles: int = 4  # periods of the cyclical schedule over the run
    strategy: str = "default"  # tf.distribute: default, mirrored, multiworker (kerasae.distribute)
    precision: str = "float32"  # or mixed_float16 / mixed_bfloat16 (losses stay float32)
    # how streamed images are read (folders, TFRecord): evaluate, detect and resume reopen
    # the data the same way; None: what the data itself says (kerasae.data.load_dataset)
    image_size: tuple = None  # (height, width) every image is resized to
    channels: int = None  # 1 or 3
    feature: str = None  # the TFRecord feature holding the image (default "image")
    sampler: str = None  # a latent sampler fitted when training ends (kerasae.samplers)
    overwrite: bool = False

    def check(self):
        for key in ("epochs", "batch_size", "latent_dim"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                flag = "--" + key.replace("_", "-")
                raise KerasaeError(f"{flag} must be a positive integer, got {value!r}")
        lr = self.learning_rate
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                               or lr <= 0):
            raise KerasaeError(f"--learning-rate must be positive, got {self.learning_rate!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise KerasaeError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                               f"{self.lr_schedule!r}")
        from kerasae.distribute import check as check_distribute
        from kerasae.rundata import check_data_options

        check_distribute(self.strategy, self.precision)
        self.image_size = check_data_options(self.image_size, self.channels, self.feature)
        if self.sampler is not None:  # an unknown name fails before any data is read
            from kerasae.samplers import create_sampler

            create_sampler(self.sampler)


def default_out(config):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    data = os.path.splitext(os.path.basename(os.path.normpath(config.dataset)))[0]
    return os.path.join("runs", f"{config.model.replace(':', '_')}-{data}-{stamp}")


def is_finished(run_dir):
    return os.path.isfile(os.path.join(run_dir, MODEL))


# where and how, not what, a run trains (a sampler is fitted after it, to the same model)
UNCOMPARED = ("out", "overwrite", "strategy", "sampler")


def settings_diff(run_dir, config):
    """The settings (TrainConfig fields) in which the run in `run_dir` differs from
    `config`: empty when re-running `config` would train the same model again."""
    import json

    saved = read_json(os.path.join(run_dir, CONFIG))
    diff = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in UNCOMPARED:
            continue
        wanted = json.loads(json.dumps(getattr(config, field.name)))  # tuples -> lists
        had = saved.get(field.name, field.default if field.name != "params" else {})
        if field.name == "model" and isinstance(had, str) and had.endswith(f":{wanted}"):
            continue  # saved as DIST:NAME where distributions clash
        if had != wanted:
            diff.append(field.name)
    return diff


def read_history(run_dir):
    """{column: [one float per epoch]} of a run's history.csv (empty when it has none)."""
    import csv

    path = os.path.join(run_dir, HISTORY)
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {k: [_number(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k}


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):  # a blank cell (a metric missing that epoch)
        return float("nan")


def prepare_out(config, resume=False):
    """Check that the run folder can be written; clear it when --overwrite is given."""
    from kerasae.checkpoints import STATE

    out = config.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise KerasaeError(f"--out {out} is a file, not a folder; choose another --out")
    unfinished = os.path.isfile(os.path.join(out, CHECKPOINTS, STATE))
    if not resume and is_finished(out):
        if not config.overwrite:
            raise KerasaeError(f"{out} already holds a finished run; pass --overwrite to "
                               "replace it or choose another --out")
        shutil.rmtree(out)
    elif not resume and unfinished:
        if not config.overwrite:  # silently restarting would throw its epochs away
            raise KerasaeError(f"{out} holds an unfinished run; pass --resume to continue "
                               "it, --overwrite to start over, or choose another --out")
        shutil.rmtree(out)
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise KerasaeError(f"cannot write to --out {out} ({exc.strerror}); choose a "
                           "writable folder") from None


def train(config, callbacks=(), verbose="auto", resume=False, on_start=None):
    """Train `config.model` on `config.dataset`; returns (run_dir, model, history dict).

    The model is built, compiled and fitted inside `config.strategy`'s scope (the global
    batch is split over its replicas) under the `config.precision` dtype policy.
    `on_start(facts, model)` is called once before the first epoch with what `run_facts`
    lists and the built model (`kerasae train` prints them as its header). Ctrl-C raises `RunInterrupted` once the
    run folder records the interruption.
    """
    from kerasae import distribute

    config.check()
    # before any TensorFlow op: a multi-worker strategy must configure the runtime first
    with distribute.training_context(config.strategy, config.precision, config.batch_size):
        config.out = distribute.worker_out(config.out or default_out(config), config.strategy)
        return _train(config, callbacks, verbose, resume, on_start)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: config.json says `interrupted`; `resume_command` continues it."""

    def __init__(self, out, epochs_done, epochs):
        import shlex

        super().__init__(out)
        self.out, self.epochs_done, self.epochs = out, epochs_done, epochs
        self.resume_command = f"kerasae train --resume --out {shlex.quote(out)}"


def _train(config, callbacks=(), verbose="auto", resume=False, on_start=None):
    """`train` inside the strategy's scope and the precision policy.

    With `resume`, continue the unfinished run in `config.out` (see `resume_config`) from
    its last checkpoint: weights, optimizers, epoch counter, callbacks and history.
    """
    import keras

    from kerasae import checkpoints, rundata
    from kerasae.registry import create_model

    data = rundata.open_data(config)  # `train` has checked the config and set config.out
    params = {"latent_dim": config.latent_dim, **config.params}
    keras.utils.set_random_seed(config.seed)
    model = create_model(config.model, input_shape=data.input_shape, **params)
    config.model = model.registered_name  # DIST:NAME where several distributions clash
    callbacks = (*beta_callbacks(config, model), *callbacks)
    if config.sampler:  # e.g. `prior` on a model without one: refused before training
        from kerasae.samplers import check_for_model

        check_for_model(config.sampler, model)
    prepare_out(config, resume)  # only once the config is known to be valid: nothing half-made
    out = config.out
    resolved = {**dataclasses.asdict(config), "input_shape": list(data.input_shape),
                "scaling": data.scaling, "n_train": int(data.n_train),
                "n_test": int(data.n_test), "model_config": model.get_config(),
                "status": "running", "kerasae_version": _version()}
    if getattr(data, "skipped", 0):
        resolved["skipped_files"] = int(data.skipped)
    write_json(os.path.join(out, CONFIG), resolved)

    # streamed batches (kerasae.rundata): memory does not grow with the dataset
    train_ds, test_ds, fit_kwargs, per_epoch = rundata.fit_pipelines(
        data, config.batch_size, seed=config.seed)
    # the fast path's steps per execution, capped at an epoch (Keras's progress bar overruns)
    model.compile(optimizer=_optimizer(config, model, per_epoch),
                  steps_per_execution=min(model.fast_steps_per_execution(), per_epoch))
    ckpt_dir = os.path.join(out, CHECKPOINTS)
    extra = [*model.run_callbacks(out, data), *callbacks]
    state = checkpoints.read_state(ckpt_dir) if resume else None
    done = 0
    # a first batch read here, not from train_ds: under multiworker that one is a worker's
    # shard, which only tf.distribute can read (kerasae.rundata.read_batches)
    if state is not None:
        done = checkpoints.restore(model, state, data.head("train", config.batch_size), extra)
        if config.learning_rate not in (None, state.get("learning_rate")) and \
                config.lr_schedule == "constant":  # a schedule was built with the new rate
            model.optimizer.learning_rate.assign(config.learning_rate)  # after a NaN
    checkpoint = checkpoints.RunCheckpoint(ckpt_dir, os.path.join(out, HISTORY), extra,
                                           rows=state["history"] if state else ())
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
            model.fit(train_ds, epochs=config.epochs, initial_epoch=done,
                      validation_data=test_ds, callbacks=run_callbacks, verbose=verbose,
                      **fit_kwargs)
        from kerasae.anomaly import save_threshold

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
        from kerasae.samplers import fit_after_training

        failed = fit_after_training(out, model, data, config, resolved)
    write_json(os.path.join(out, CONFIG), resolved)
    if failed:
        raise failed
    return out, model, checkpoints.history_dict(checkpoint.rows)


def run_facts(config, data, model, resumed_from=None):
    """What a run trains, on what and where: the header `kerasae train` prints."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    strategy = tf.distribute.get_strategy()
    return {"model": config.model, "dataset": data.name, "n_train": int(data.n_train),
            "n_test": int(data.n_test), "skipped": int(getattr(data, "skipped", 0) or 0),
            "input_shape": tuple(data.input_shape),
            "latent_dim": model.latent_dim,
            "parameters": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
            "out": config.out, "device": f"GPU x{len(gpus)}" if gpus else "CPU",
            "strategy": config.strategy, "replicas": int(strategy.num_replicas_in_sync),
            "precision": config.precision, "epochs": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate or model.default_learning_rate,
            "lr_schedule": config.lr_schedule, "resumed_from": resumed_from}


def _optimizer(config, model, steps_per_epoch):
    """Adam at --learning-rate with --lr-schedule over all of the run's steps (a resume with
    more --epochs stretches the decay); None: the model's own default optimizer."""
    if config.lr_schedule == "constant" and config.learning_rate is None:
        return None
    return adam(config.learning_rate or model.default_learning_rate, config.lr_schedule,
                config.epochs * steps_per_epoch)


def adam(learning_rate, schedule="constant", total_steps=None):
    """Adam at `learning_rate`: constant, or (`schedule="cosine"`) decayed to 0 along a
    cosine over `total_steps` optimizer steps (Loshchilov and Hutter, ICLR 2017)."""
    import keras

    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    return keras.optimizers.Adam(learning_rate)


def resume_config(out, **overrides):
    """The TrainConfig of the run in `out` (its config.json), with `overrides` applied."""
    path = os.path.join(out, CONFIG)
    if not os.path.isfile(path):
        raise KerasaeError(f"{out} is not a kerasae run folder (no {CONFIG}); start it "
                           "without --resume")
    try:
        saved = read_json(path)
    except ValueError as exc:
        raise KerasaeError(f"{path} is not valid JSON ({exc}); start the run again with "
                           "--overwrite") from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: v for k, v in saved.items() if k in fields}
    settings.update({k: v for k, v in overrides.items() if v is not None},
                    out=out, overwrite=False)
    return TrainConfig(**settings)


def beta_callbacks(config, model):
    """The BetaAnnealing `--beta-schedule` asks for, checked before the run folder is made."""
    if not config.beta_schedule:
        return []
    from kerasae.callbacks import BetaAnnealing

    annealing = BetaAnnealing(config.beta_schedule, config.beta_warmup, config.beta_cycles)
    annealing.check_model(model)
    return [annealing]


def load_run(run_dir):
    """(config dict, model) of a finished run."""
    from kerasae.saving import load_model

    path = os.path.join(run_dir, CONFIG)
    if not os.path.isdir(run_dir) or not os.path.isfile(path):
        raise KerasaeError(f"{run_dir} is not a kerasae run folder (no {CONFIG}); pass the "
                           "--out folder of `kerasae train`")
    if not is_finished(run_dir):
        raise KerasaeError(f"{run_dir} holds no trained model yet ({MODEL} missing); finish "
                           "or resume its training first")
    try:
        config = read_json(path)
    except ValueError as exc:
        raise KerasaeError(f"{path} is not valid JSON ({exc}); the run folder is damaged") from None
    return config, load_model(os.path.join(run_dir, MODEL))


def evaluate(run_dir, dataset=None, verbose=False):
    """Test-set reconstruction metrics of a finished run, streamed over the test split
    (`kerasae.rundata.evaluate`; `verbose`: Keras's progress bar)."""
    from kerasae.rundata import evaluate as evaluate_streamed

    return evaluate_streamed(run_dir, dataset, verbose)


def _version():
    from kerasae import __version__

    return __version__
