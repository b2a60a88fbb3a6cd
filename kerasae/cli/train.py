"""`kerasae train`: train a registered model and write its run folder."""
import dataclasses
import os

TRAIN_KEYS = ("model", "dataset", "epochs", "batch_size", "latent_dim", "learning_rate",
              "lr_schedule", "seed", "out", "beta_schedule", "beta_warmup", "beta_cycles",
              "strategy", "precision", "sampler", "image_size", "channels", "feature")


def register(sub):
    from kerasae.runs.config import LR_SCHEDULES

    p = sub.add_parser("train", help="train a model and write a run folder")
    p.add_argument("--model", help="a registered model name (see `kerasae list`)")
    p.add_argument("--dataset", help="digits, fashion_mnist, mnist, cifar10, or a path: an "
                                     "image folder (streamed), TFRecord files (a quoted glob "
                                     "or a folder), .npy, .npz, .csv; default digits")
    add_image_options(p)
    p.add_argument("--epochs", type=int, help="passes over the training split")
    p.add_argument("--batch-size", type=int,
                   help="examples per step (global: split over a strategy's replicas)")
    p.add_argument("--latent-dim", type=int, help="size of the code")
    p.add_argument("--learning-rate", type=float,
                   help="Adam learning rate (default: the model's own, 1e-3; conv_ae 2e-3)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help="constant (default), or cosine: decay the rate to 0 over the run")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", default=[],
                   help="a model constructor argument (repeatable); see `kerasae info NAME`")
    p.add_argument("--config", metavar="FILE.toml",
                   help="settings file: the keys above at top level, model kwargs in [params]")
    p.add_argument("--seed", type=int, help="seeds weights, shuffling, noise and draws")
    p.add_argument("--out", help="run folder (default runs/MODEL-DATASET-TIME)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--strategy", choices=("default", "mirrored", "multiworker"),
                   help="tf.distribute: mirrored = all local GPUs (or CPU devices), "
                        "multiworker = the machines in TF_CONFIG; --batch-size is global")
    p.add_argument("--precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                   help="layer compute dtype (losses stay float32); default float32")
    p.add_argument("--beta-schedule", choices=("linear", "cyclical", "sigmoid"),
                   help="anneal the KL weight of vae/beta_vae from 0 to its beta")
    p.add_argument("--beta-warmup", type=int, metavar="EPOCHS",
                   help="epochs of the linear/sigmoid ramp (default 10)")
    p.add_argument("--beta-cycles", type=int,
                   help="periods of the cyclical schedule over the run (default 4)")
    p.add_argument("--sampler", metavar="NAME",
                   help="fit this latent sampler to the training codes when training ends "
                        "(gmm, gaussian, two_stage, prior, ...): how `kerasae sample` and an "
                        "export generate; makes any model with an encoder generative")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished run in --out from its last checkpoint; its "
                        "config.json has the settings (only --epochs, --learning-rate and "
                        "--strategy may change)")
    p.add_argument("--track", choices=("mlflow",),
                   help="log params, per-epoch metrics and the run folder's artifacts to "
                        "MLflow (pip install 'kerasae[mlflow]')")
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow server (http://HOST:PORT) or store (default "
                        "$MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in this folder)")
    p.add_argument("--experiment", metavar="NAME",
                   help="MLflow experiment (default kerasae)")
    from kerasae.cli import add_verbosity

    add_verbosity(p)
    _show_config_defaults(p)
    p.set_defaults(func=cmd_train)


def add_image_options(p):
    """--image-size, --channels, --feature: how streamed images are read (train, compare);
    recorded in the run, so evaluate, detect and --resume read them the same way."""
    from kerasae.data.options import parse_image_size

    p.add_argument("--image-size", type=_argument_type(parse_image_size), metavar="H,W",
                   help="resize every image (folders, TFRecord) to H,W pixels (default: "
                        "the size of the first image)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="1 (greyscale) or 3 (RGB) channels per image (default: those of "
                        "the first image)")
    p.add_argument("--feature", metavar="NAME",
                   help="the TFRecord feature holding the encoded image (default image)")


def _argument_type(parse):
    """argparse type from a parser that raises KerasaeError (argparse then says exit 2)."""
    import argparse

    from kerasae.errors import KerasaeError

    def convert(text):
        try:
            return parse(text)
        except KerasaeError as exc:  # argparse names the flag itself
            flag, _, rest = str(exc).partition(" ")
            raise argparse.ArgumentTypeError(rest if flag.startswith("--") else str(exc)) \
                from None

    convert.__name__ = parse.__name__
    return convert


def _show_config_defaults(parser):
    """The flags default to None (a config file may set them); --help shows TrainConfig's."""
    from kerasae.runs.config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    for action in parser._actions:
        value = defaults.get(action.dest)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and \
                "default" not in (action.help or ""):
            action.help = f"{action.help or ''} (default {value})".strip()


def load_toml(path):
    import tomllib

    from kerasae.errors import KerasaeError

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise KerasaeError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise KerasaeError(f"config file {path} is not valid TOML ({exc})") from None
    unknown = set(data) - set(TRAIN_KEYS) - {"params"}
    if unknown:
        raise KerasaeError(f"config file {path}: unknown key(s) {', '.join(sorted(unknown))}; "
                           f"use {', '.join(TRAIN_KEYS)} and a [params] table")
    return data


def resolve_config(args):
    """CLI flags over the config file over the defaults."""
    from kerasae.errors import KerasaeError
    from kerasae.params import parse_assignments
    from kerasae.runs.config import TrainConfig

    settings = load_toml(args.config) if args.config else {}
    params = dict(settings.pop("params", {}) or {})
    params.update(parse_assignments(args.param))
    for key in TRAIN_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if not settings.get("model"):
        raise KerasaeError("no model given; pass --model NAME (see `kerasae list`)")
    return TrainConfig(**settings, params=params, overwrite=args.overwrite)


RESUME_KEYS = ("out", "epochs", "learning_rate", "strategy")  # what a resume may change


def resume_settings(args):
    """The run's own config for --resume; other flags would silently change the run."""
    from kerasae.errors import KerasaeError
    from kerasae.runs.folder import resume_config

    if not args.out:
        raise KerasaeError("--resume needs --out RUN_DIR, the folder of the run to continue")
    given = [k for k in TRAIN_KEYS if k not in RESUME_KEYS and getattr(args, k, None) is not None]
    given += [k for k in ("param", "config", "overwrite") if getattr(args, k, None)]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise KerasaeError(f"--resume takes the settings from {args.out}/config.json; drop "
                           f"{flags} (only --epochs, --learning-rate and --strategy may change)")
    return resume_config(args.out, epochs=args.epochs, learning_rate=args.learning_rate,
                         strategy=getattr(args, "strategy", None))


def cmd_train(args):
    from kerasae.cli import verbosity
    from kerasae.runs.folder import HISTORY, is_finished, settings_diff
    from kerasae.runs.training import train

    level = verbosity(args)
    if args.resume:
        config = resume_settings(args)
        if is_finished(config.out):
            print(f"{config.out} is already a finished run; nothing to resume")
            return 0
    else:
        config = resolve_config(args)
        if config.out and not config.overwrite and is_finished(config.out):
            return _reuse(config, settings_diff(config.out, config))
    from kerasae import tracking

    trackers = tracking.tracking_callbacks(args, config)  # a bad URI fails before training
    out, _, history = train(config, callbacks=trackers, verbose=_keras_verbose(level),
                            resume=args.resume,
                            on_start=lambda facts, model: _header(facts, model, level,
                                                                  args.resume))
    tracking.finish(trackers)  # model.keras and threshold.json are written after fit
    _summary(config.model, history, out, os.path.join(out, HISTORY))
    if config.sampler:
        print(f"latent sampler {config.sampler} fitted to the training codes: "
              f"{os.path.join(out, 'samplers', config.sampler)}")
    return 0


def _reuse(config, diff):
    """Re-running a finished run's command reuses it (as `compare` does); other settings
    would silently replace it, so they need --overwrite."""
    from kerasae.errors import KerasaeError
    from kerasae.runs.folder import HISTORY, read_history

    if diff:
        raise KerasaeError(f"{config.out} already holds a finished run trained with other "
                           f"settings ({', '.join(diff)} differ); pass --overwrite to replace "
                           "it or choose another --out")
    print(f"{config.out} already holds a finished run with these settings; reusing it "
          "(pass --overwrite to train again)")
    _summary(config.model, read_history(config.out), config.out,
             os.path.join(config.out, HISTORY))
    if config.sampler:  # the same model: fit the sampler asked for, if it is not there yet
        from kerasae.runs.samplers import fit_run_sampler, load_sampler

        if load_sampler(config.out, config.sampler) is None:
            sampler = fit_run_sampler(config.out, config.sampler, seed=config.seed)
            print(f"{config.out} now has a {sampler.describe()}")
    return 0


def _summary(model, history, out, history_path):
    losses = history.get("loss") or [float("nan")]
    print(f"trained {model} for {len(losses)} epoch(s): loss {losses[0]:.5f} -> "
          f"{losses[-1]:.5f}; run folder {out} (history in {history_path})")


def _keras_verbose(level):
    """Keras's fit verbosity: a live progress bar on a terminal, one line per epoch in a
    log file (a bar there is a wall of carriage returns), nothing with --quiet."""
    import sys

    if level == 0:
        return 0
    return 1 if sys.stdout.isatty() or level == 2 else 2


def _header(facts, model, level, resume):
    """What is about to train, printed before the first epoch (not with --quiet); with
    --verbose also the resolved settings and Keras's summary of each network."""
    if level == 0:
        return
    f = facts
    shape = "x".join(map(str, f["input_shape"]))
    if resume:
        done = f["resumed_from"] or 0
        print(f"resuming {f['out']} from epoch {done + 1} of {f['epochs']}" if done else
              f"resuming {f['out']}: no epoch had finished, starting at epoch 1 of "
              f"{f['epochs']}")
    n_bad = f.get("skipped") or 0
    skipped = f" ({n_bad} undecodable file{'s' if n_bad != 1 else ''} skipped)" if n_bad else ""
    lines = [
        f"kerasae train: {f['model']} on {f['dataset']} ({f['n_train']} train / "
        f"{f['n_test']} test examples of shape {shape}){skipped}",
        f"  model     {f['model']}, latent_dim {f['latent_dim']}, "
        f"{f['parameters']:,} trainable parameters",
        f"  training  {f['epochs']} epoch{'s' if f['epochs'] != 1 else ''}, batch {f['batch_size']}, Adam "
        f"{f['learning_rate']:g} ({f['lr_schedule']}), {f['precision']}",
        f"  device    {f['device']}, strategy {f['strategy']} ({f['replicas']} "
        f"replica{'s' if f['replicas'] != 1 else ''})",
        f"  run       {f['out']}",
    ]
    print("\n".join(lines), flush=True)
    if level == 2:
        for net in (model.encoder, model.decoder):
            net.summary(print_fn=lambda line, *_, **__: print(line))
        print(flush=True)
