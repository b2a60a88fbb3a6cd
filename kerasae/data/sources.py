"""Data sources: `load_dataset` opens a registered name or a path, through one registry.

A `DataSource` is registered in the `kerasae.datasets` entry-point group like a model. A
named source (`digits`, `fashion_mnist`, a plugin's `moons`) is opened by its name, one
that declares an `argument` also as NAME:ARGUMENT (`dsprites:20000`); a path
scheme (`images`: image folders and TFRecord files; `numpy`: .npy/.npz; `csv`) opens the
paths it `claims`, and is never chosen by its name alone. kerasae's schemes are asked
first, then plugins'. Named sets and small arrays give an in-memory `Dataset`; image
folders, TFRecord files and large .npy files stream from disk. Every dataset
offers n_train, n_test, batches(split, batch_size, ...), head(split, n) and arrays(split).
Importing this module imports neither TensorFlow nor the sources.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING

from kerasae.errors import KerasaeError
from kerasae.registry import Registry

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.data.memory import Dataset
    from kerasae.data.streams import StreamingDataset

IMAGE_OPTIONS = ("image_size", "channels", "feature")


class DataSource:
    """A way to read data (subclass it and list it under `kerasae.datasets`).

    A named source overrides `open(source, test_fraction, scaling)`; a path scheme sets
    `path_scheme = True` and overrides `claims(source)` too. `reads` says what it reads
    (shown when no source claims a path); `image_options` whether --image-size, --channels
    and --feature apply to it. A named source that sets `argument` is also opened as
    NAME:ARGUMENT (`open` gets the whole name); `check_argument` refuses a bad one before
    TensorFlow is imported. `factors = True` declares that its datasets carry known factors
    of variation (`factors_train`, `factors_test`, `factor_names`, `factor_sizes`,
    `sample_factors`, `observations`), which `kerasae evaluate --disentanglement` reads."""

    name = None  # set by the registry
    order = 100  # where it is listed and, for a path scheme, asked (kerasae's own first)
    path_scheme = False
    reads = ""
    image_options = False
    argument = ""  # what may follow NAME: ("N" for dsprites:N); empty: nothing may
    factors = False  # its datasets carry factors of variation (disentanglement metrics)

    def claims(self, source):
        """True when this path scheme reads `source`."""
        return False

    def check_argument(self, argument):
        """Raise KerasaeError (one line: the problem and the fix) unless this source reads
        NAME:`argument`."""

    def open(self, source, test_fraction=0.2, scaling=None, **image_options):
        """The dataset of `source` (a `kerasae.data.Dataset` or a streaming dataset)."""
        raise NotImplementedError


def _check_source_class(cls, dist):
    if not (isinstance(cls, type) and issubclass(cls, DataSource)):
        raise TypeError(f"{cls!r} is not a subclass of kerasae.data.DataSource")


#: name -> DataSource subclass, fed by the `kerasae.datasets` entry points
DATASETS = Registry(
    "data source", "kerasae.datasets", accept=_check_source_class, plural="datasets"
)
register_dataset = DATASETS.register


def source(name):
    """A new instance of the data source registered as `name`."""
    return DATASETS.get(name)()


def _loaded(entries):
    """(entry, source) of the entries that load; a broken plugin is warned about, skipped."""
    for entry in entries:
        try:
            yield entry, DATASETS.load_entry(entry)()
        except KerasaeError:
            continue


def _ordered(entries):
    """(entry, source) of the entries that load, kerasae's own first, each by `order`."""
    loaded = list(_loaded(entries))
    return sorted(loaded, key=lambda es: (not es[0].builtin, es[1].order, es[0].name))


def named_datasets():
    """The names of the named sources: kerasae's own, then plugins'."""
    return [e.listed for e, s in _ordered(DATASETS.entries()) if not s.path_scheme]


def resolve(name):
    """The `DataSource` that reads `name`: a named source, else the first path scheme
    (kerasae's own first) that claims it; KerasaeError naming the fix otherwise."""
    name = str(name)
    if ":" in name and name in DATASETS:  # DIST:NAME, where plugins clash
        return source(name)
    entries = DATASETS.entries()
    own = [e for e in entries if e.listed == name]
    for _, found in _loaded(own):
        if not found.path_scheme:
            return found
    found = _with_argument(name)
    if found is not None:
        return found
    schemes = [s for _, s in _ordered(entries) if s.path_scheme]
    for scheme in schemes:
        if scheme.claims(name):
            return scheme
    kinds = ", ".join(s.reads for s in schemes if s.reads)
    if os.path.exists(name):
        raise KerasaeError(f"{name}: unsupported file type; use {kinds}")
    if os.sep in name or "." in os.path.basename(name):
        raise KerasaeError(f"data path {name} does not exist; check the path")
    named = named_datasets()
    close = difflib.get_close_matches(name, named, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise KerasaeError(
        f"unknown dataset {name!r}; {hint}use one of {', '.join(named)} or a path to {kinds}"
    )


def is_named(name):
    """True when `name` opens a named source (NAME, DIST:NAME, NAME:ARGUMENT), not a path."""
    try:
        return not resolve(name).path_scheme
    except KerasaeError:
        return False


def _with_argument(name):
    """The named source that reads NAME:ARGUMENT (`dsprites:20000`, or DIST:NAME:ARGUMENT),
    its argument checked; None when `name` is not of that form."""
    base, sep, argument = name.rpartition(":")
    if not sep or not base or os.sep in name or base not in DATASETS:
        return None
    found = source(base)
    if found.path_scheme:
        return None
    if not found.argument:
        raise KerasaeError(f"dataset {base!r} takes no argument after ':'; use {base}")
    found.check_argument(argument)
    return found


def load_dataset(
    source: str | os.PathLike,
    test_fraction: float = 0.2,
    scaling: dict | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    feature: str | None = None,
) -> Dataset | StreamingDataset:
    """A dataset from a registered name or a path. `scaling` re-applies a saved scaling.

    `image_size` (H, W), `channels` (1 or 3) and `feature` (the TFRecord bytes feature,
    default "image") apply to image folders and TFRecord files only.
    """
    source = str(source)
    reader = resolve(source)
    given = {k: v for k, v in zip(IMAGE_OPTIONS, (image_size, channels, feature)) if v is not None}
    if given and not reader.image_options:
        raise KerasaeError(
            f"--{next(iter(given)).replace('_', '-')} applies to image folders "
            f"and TFRecord files, not to {source}; drop it"
        )
    return reader.open(source, test_fraction=test_fraction, scaling=scaling, **given)
