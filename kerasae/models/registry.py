"""The model registry: name -> model class, fed lazily by the `kerasae.models` entry points.

Built-in models are listed in kerasae's own pyproject exactly like third-party ones
(timm-style `create_model` / `list_models("*vae*")`); the mechanism (lazy loading, broken
and clashing plugins, DIST:NAME) is `kerasae.registry`'s, shared by every extension kind.
A model's name is its name everywhere: `registered_name` (config.json, the export
manifest) and Keras's serialization key, so a saved `.keras` file names its class.
Importing this module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kerasae.entry_points import warn_once, warned
from kerasae.errors import UnknownModelError
from kerasae.params import check_params
from kerasae.registry import Registry

if TYPE_CHECKING:  # type names only: never imported at run time
    from kerasae.models.base import Autoencoder

GROUP = "kerasae.models"
API_VERSION = 2  # a plugin may declare `kerasae_api_version`; an unsupported one is a warning
#: plugin API versions this kerasae runs unchanged (1: before metric_names, hooks, set_networks)
SUPPORTED_API_VERSIONS = (1, 2)


def _check_model_class(cls, dist):
    # the base class imports TensorFlow: only once a model is actually loaded
    from kerasae.models.base import Autoencoder

    if not (isinstance(cls, type) and issubclass(cls, Autoencoder)):
        raise TypeError(f"{cls!r} is not a subclass of kerasae.models.base.Autoencoder")
    declared = getattr(cls, "kerasae_api_version", API_VERSION)
    if declared not in SUPPORTED_API_VERSIONS:
        fix = (
            "upgrade kerasae"
            if isinstance(declared, int) and declared > API_VERSION
            else f"update {dist}"
        )
        warn_once(
            f"kerasae model {cls.__name__} from distribution {dist!r} was written for "
            f"plugin API version {declared}, this kerasae has version {API_VERSION}; "
            f"it may misbehave ({fix})"
        )


def _serializable(entry, cls):
    """Keras's key for the class is its registered name: a saved file names its model."""
    import keras  # only when a model class is bound: `kerasae list` never imports it

    keras.saving.register_keras_serializable(package="kerasae", name=entry.reference)(cls)


MODELS = Registry(
    "model",
    GROUP,
    accept=_check_model_class,
    bind=_serializable,
    unknown_error=UnknownModelError,
    listing="kerasae list",
    name_attr="registered_name",
)


def register_model(
    name: str | None = None, *, dist: str = "<in-process>"
) -> Callable[[type], type]:
    """Class decorator: register a model under `name` and make it Keras-serializable.

    Modules listed as entry points use it too; there the entry point's name wins (a
    different `name` is a warning). `name` defaults to the class name in lower case.
    `register_model` in a session refuses a name a distribution provides, since Keras
    would silently rebind its saved files.
    """
    return MODELS.register(name, dist=dist)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models that match the glob `pattern`: bare names, and
    DIST:NAME for a name that several distributions provide (see `get_entry`)."""
    return MODELS.names(pattern)


def get_entry(name):
    """The entry for `name` (a bare name, or DIST:NAME to pick one distribution's)."""
    return MODELS.entry(name)


def get_model_class(name: str) -> type[Autoencoder]:
    return MODELS.get(name)


def models_matching(spec: str) -> list[str]:
    """The models a comma-separated list of names and globs names ('ae,*vae*'), in order;
    an unknown name or a glob that matches nothing is refused (without importing them)."""
    names = []
    for part in (p.strip() for p in str(spec or "").split(",")):
        if not part:
            continue
        if any(ch in part for ch in "*?["):
            found = list_models(part)
            if not found:
                raise UnknownModelError(
                    f"--models pattern {part!r} matches no registered model; see `kerasae list`"
                )
        else:
            get_entry(part)  # an unknown name fails here, before anything trains
            found = [part]
        names += [n for n in found if n not in names]
    return names


def create_model(name: str, **kwargs: Any) -> Autoencoder:
    """Build the registered model `name` with its constructor keyword arguments."""
    cls = get_model_class(name)
    return cls(**check_params(cls, kwargs))


def _reset_for_tests():
    """Forget every model entry and warning: the next question reads the entry points."""
    MODELS.reset()
    warned.clear()
