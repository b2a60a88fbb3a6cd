"""Latent samplers in a run folder: fitted after training or later, saved, used to generate.

RUN/samplers/NAME/ holds one fitted sampler (kerasae.samplers); config.json names the
default one ("sampler") and every fitted one ("samplers").
"""

import os

from kerasae.errors import KerasaeError, NotGenerativeError
from kerasae.io import read_json, write_json
from kerasae.runs.data import open_data, read_batches
from kerasae.runs.folder import CONFIG, load_run
from kerasae.samplers.base import (
    META,
    SAMPLERS_DIR,
    LatentSampler,
    create_sampler,
    no_sampler_message,
    sampler_class,
)

#: at most this many training examples are encoded to fit a sampler (bounds memory)
FIT_LIMIT = 100_000


def training_examples(data, limit=FIT_LIMIT, batch_size=256):
    """The training examples a run's sampler is fitted to: the first `limit` (rounded up
    to whole batches) of the training split, streamed (a tf.data pipeline of batches)."""
    return read_batches(data, "train", batch_size).take(-(-int(limit) // batch_size))


def run_samplers_dir(run_dir, name):
    return os.path.join(run_dir, SAMPLERS_DIR, name)


def check_for_model(name, model):
    """Raise KerasaeError unless sampler `name` exists and applies to `model`."""
    create_sampler(name)
    sampler_class(name).check(model)


def save_run_sampler(run_dir, sampler):
    """Save `sampler` in RUN/samplers/NAME/; config.json then names it the default."""
    sampler.save(run_samplers_dir(run_dir, sampler.name))
    path = os.path.join(run_dir, CONFIG)
    config = read_json(path)
    config["samplers"] = sorted({*config.get("samplers", []), sampler.name})
    config["sampler"] = sampler.name
    write_json(path, config)


def fit_run_sampler(run_dir, name, seed=None, **options):
    """Fit sampler `name` to a finished run's training codes and save it in the run."""
    sampler = create_sampler(name, **options)  # a bad name or option fails before loading
    config, model = load_run(run_dir)
    sampler.check(model)
    data = open_data(config, scaling=config.get("scaling"))
    seed = config.get("seed", 0) if seed is None else seed
    sampler.fit(model, training_examples(data), seed=seed)
    save_run_sampler(run_dir, sampler)
    return sampler


def fit_after_training(run_dir, model, data, config, resolved):
    """`kerasae train --sampler NAME`: fit it once model.keras is saved; updates
    `resolved` (the run's config.json). Returns a KerasaeError to raise once config.json
    is written, or None: a failure here keeps the trained model."""
    try:
        sampler = create_sampler(config.sampler).fit(
            model, training_examples(data), seed=config.seed
        )
        sampler.save(run_samplers_dir(run_dir, sampler.name))
    except Exception as exc:  # noqa: BLE001 - the model is saved; say how to retry
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        resolved.update(sampler=None, sampler_error=first)
        return KerasaeError(
            f"the model is trained and saved in {run_dir}, but fitting the "
            f"{config.sampler} sampler failed ({first}); retry with kerasae "
            f"fit-sampler {run_dir} --sampler {config.sampler}"
        )
    resolved["samplers"] = sorted({*resolved.get("samplers", []), sampler.name})
    return None


def load_sampler(run_dir, name=None, model=None):
    """The sampler `name` fitted in the run (None: config.json's "sampler"); None when
    none is fitted. "prior" is bound to `model` (default: the run's model, loaded)."""
    if name is None:
        path = os.path.join(run_dir, "config.json")
        if not os.path.isfile(path):
            raise KerasaeError(
                f"{run_dir} is not a kerasae run folder (no config.json); "
                "pass the --out folder of `kerasae train`"
            )
        name = read_json(path).get("sampler")
        if name is None:
            return None
    if name == "prior":
        if model is None:
            model = load_run(run_dir)[1]
        return create_sampler("prior").fit(model)
    create_sampler(name)  # an unknown name says so
    folder = run_samplers_dir(run_dir, name)
    return LatentSampler.load(folder) if os.path.isfile(os.path.join(folder, META)) else None


def resolve_sampler(run_dir, config, model, name=None, required=True):
    """The sampler `kerasae sample`, `evaluate --generation` and `export` draw from:
    `name`, else the run's default (config.json's "sampler"), else the model's own prior.
    A sampler that is named (here or in config.json) but not fitted raises: nothing falls
    back silently. A model with neither a fitted sampler nor a prior raises too, unless
    `required` is False: then None (an export records why in its `no_prior`)."""
    if name is None:
        name = config.get("sampler") or "prior"
        if name == "prior" and not required and not getattr(model, "generative", False):
            return None
    if name == "prior":
        if not getattr(model, "generative", False):
            raise NotGenerativeError(no_sampler_message(model, run_dir))
        return create_sampler("prior").fit(model)
    sampler = load_sampler(run_dir, name, model)
    if sampler is None:
        fitted = ", ".join(config.get("samplers", [])) or "none"
        raise KerasaeError(
            f"no {name} sampler is fitted in {run_dir} (fitted: {fitted}); "
            f"fit it with kerasae fit-sampler {run_dir} --sampler {name}"
        )
    if sampler.latent_dim != model.latent_dim:
        raise KerasaeError(
            f"the {name} sampler in {run_dir} draws {sampler.latent_dim}-d "
            f"codes but the model's are {model.latent_dim}-d; fit it again "
            f"with kerasae fit-sampler {run_dir} --sampler {name}"
        )
    return sampler


def run_generator(run_dir, config, model, name=None):
    """(draw, description): draw(n, seed) -> images (n, *data_shape) float32 from the
    sampler `resolve_sampler` picks."""
    sampler = resolve_sampler(run_dir, config, model, name)
    return (lambda n, seed=None: sampler.generate(model, n, seed)), sampler.describe()
