"""`kerasae train`: train a registered model and write its run folder.

Its flags are TrainConfig's fields (kerasae.runs.config): help, types and choices there.
"""

import argparse
import dataclasses
import os
import tomllib

from kerasae.cli import add_verbosity, verbosity
from kerasae.cli.models import describe
from kerasae.cli.train_output import header, keras_verbose, summary
from kerasae.data.sources import resolve
from kerasae.errors import KerasaeError
from kerasae.models.registry import MODELS
from kerasae.params import check_values, parse_assignments
from kerasae.runs.config import (
    RESUME_CHANGES,
    RESUME_KEYS,
    TRAIN_KEYS,
    TrainConfig,
    field,
    flag_of,
)
from kerasae.runs.folder import (
    HISTORY,
    is_finished,
    read_history,
    resume_config,
    settings_diff,
)


def register(sub):
    p = sub.add_parser("train", help="train a model and write a run folder")
    for name in TRAIN_KEYS:  # TrainConfig is the one source of the flags
        _add_setting(p, name)
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        default=[],
        help="a model constructor argument (repeatable); see `kerasae info NAME`",
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        help="settings file: the keys above at top level, model kwargs in [params]",
    )
    p.add_argument("--overwrite", action="store_true", help=field("overwrite").metadata["help"])
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the unfinished run in --out from its last checkpoint; its "
        "config.json has the settings (only "
        f"{_flags(RESUME_CHANGES)} may change)",
    )
    p.add_argument(
        "--track",
        choices=("mlflow",),
        help="log params, per-epoch metrics and the run folder's artifacts to "
        "MLflow (pip install 'kerasae[mlflow]')",
    )
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow server (http://HOST:PORT) or store (default "
        "$MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in this folder)",
    )
    p.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default kerasae)")

    add_verbosity(p)
    p.set_defaults(func=cmd_train, check=check)


def _flags(keys):
    return ", ".join(flag_of(k) for k in keys[:-1]) + f" and {flag_of(keys[-1])}"


def add_image_options(p):
    """--image-size, --channels, --feature: how streamed images are read (train, compare);
    recorded in the run, so evaluate, detect and --resume read them the same way."""
    for name in ("image_size", "channels", "feature"):
        _add_setting(p, name)


def _add_setting(p, name):
    """The flag of TrainConfig's field `name`, from its metadata (kerasae.runs.config)."""
    f = field(name)
    kind = f.metadata["type"]
    kind = _argument_type(kind) if kind not in (None, int, float, str) else kind
    help_text = f.metadata["help"]
    if f.default not in (None, dataclasses.MISSING) and "default" not in help_text:
        help_text = f"{help_text} (default {f.default})"
    p.add_argument(
        flag_of(name),
        dest=name,
        type=kind,
        help=help_text,
        choices=f.metadata["choices"],
        metavar=f.metadata["metavar"],
    )


def _argument_type(parse):
    """argparse type from a parser that raises KerasaeError (argparse then says exit 2)."""

    def convert(text):
        try:
            return parse(text)
        except KerasaeError as exc:  # argparse names the flag itself
            flag, _, rest = str(exc).partition(" ")
            raise argparse.ArgumentTypeError(rest if flag.startswith("--") else str(exc)) from None

    convert.__name__ = parse.__name__
    return convert


def load_toml(path):

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise KerasaeError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise KerasaeError(f"config file {path} is not valid TOML ({exc})") from None
    unknown = set(data) - set(TRAIN_KEYS) - {"params"}
    if unknown:
        raise KerasaeError(
            f"config file {path}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(TRAIN_KEYS)} and a [params] table"
        )
    return data


def resolve_config(args):
    """CLI flags over the config file over the defaults."""
    settings = load_toml(args.config) if args.config else {}
    params = dict(settings.pop("params", {}) or {})
    params.update(parse_assignments(args.param))
    for key in TRAIN_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    return TrainConfig(**settings, params=params, overwrite=args.overwrite).check()


def resume_settings(args):
    """The run's own config for --resume; other flags would silently change the run."""
    if not args.out:
        raise KerasaeError("--resume needs --out RUN_DIR, the folder of the run to continue")
    given = [k for k in TRAIN_KEYS if k not in RESUME_KEYS and getattr(args, k, None) is not None]
    given += [k for k in ("param", "config", "overwrite") if getattr(args, k, None)]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise KerasaeError(
            f"--resume takes the settings from {args.out}/config.json; drop "
            f"{flags} (only {_flags(RESUME_CHANGES)} may change)"
        )
    return resume_config(args.out, **{k: getattr(args, k, None) for k in RESUME_CHANGES})


def check(args):
    """Everything train can refuse before TensorFlow: the settings and config file, the
    model and its parameters (read from its source), the data source; the resolved
    config is `args.train_config`."""
    if args.resume:
        args.train_config = resume_settings(args)
        return
    config = resolve_config(args)
    entry = MODELS.entry(config.model)
    check_values(config.model, describe(entry, args.debug).params, config.params)
    resolve(config.dataset)
    args.train_config = config


def cmd_train(args):
    from kerasae.runs.training import train  # imports TensorFlow: only when used

    level = verbosity(args)
    config = args.train_config
    if args.resume:
        if is_finished(config.out):
            print(f"{config.out} is already a finished run; nothing to resume")
            return 0
    elif config.out and not config.overwrite and is_finished(config.out):
        return _reuse(config, settings_diff(config.out, config))

    import kerasae.tracking as tracking  # imports TensorFlow: only once the arguments are checked

    trackers = tracking.tracking_callbacks(args, config)  # a bad URI fails before training
    out, _, history = train(
        config,
        callbacks=trackers,
        verbose=keras_verbose(level),
        resume=args.resume,
        on_start=lambda facts, model: header(facts, model, level, args.resume),
    )
    logged = tracking.finish(trackers)  # model.keras and threshold.json come after fit
    summary(config.model, history, out, os.path.join(out, HISTORY))
    for line in logged if level else ():
        print(line)
    if config.sampler:
        print(
            f"latent sampler {config.sampler} fitted to the training codes: "
            f"{os.path.join(out, 'samplers', config.sampler)}"
        )
    return 0


def _reuse(config, diff):
    """Re-running a finished run's command reuses it (as `compare` does); other settings
    would silently replace it, so they need --overwrite."""
    if diff:
        raise KerasaeError(
            f"{config.out} already holds a finished run trained with other "
            f"settings ({', '.join(diff)} differ); pass --overwrite to replace "
            "it or choose another --out"
        )
    print(
        f"{config.out} already holds a finished run with these settings; reusing it "
        "(pass --overwrite to train again)"
    )
    summary(config.model, read_history(config.out), config.out, os.path.join(config.out, HISTORY))
    if config.sampler:  # the same model: fit the sampler asked for, if it is not there yet
        # imports TensorFlow: only when used
        from kerasae.runs.samplers import fit_run_sampler, load_sampler

        if load_sampler(config.out, config.sampler) is None:
            sampler = fit_run_sampler(config.out, config.sampler, seed=config.seed)
            print(f"{config.out} now has the {sampler.describe()}")
    return 0
