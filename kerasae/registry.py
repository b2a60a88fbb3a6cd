"""Model registry: name -> model class, fed lazily by the `kerasae.models` entry-point group.

Built-in models are listed in kerasae's own pyproject exactly like third-party ones
(timm-style `create_model` / `list_models("*vae*")`). Reading the entry points imports
nothing; a model's module is imported only when that model is created, described or
loaded. A plugin that fails to import is reported in one warning naming its
distribution, and everything else keeps working.
"""
import dataclasses
import difflib
import fnmatch
import importlib.metadata
import os
import warnings

from kerasae.errors import KerasaeError, UnknownModelError

GROUP = "kerasae.models"
BUILTIN_DIST = "kerasae"
API_VERSION = 1  # a plugin may declare `kerasae_api_version`; a mismatch is a warning


@dataclasses.dataclass
class Entry:
    name: str
    dist: str  # the distribution that provides it ("kerasae", a plugin's, or "<in-process>")
    loader: object  # zero-argument callable returning the class
    cls: object = None
    error: str = None  # why loading failed, once it has

    def load(self):
        if self.cls is None and self.error is None:
            try:
                cls = self.loader()
                _check_model_class(cls)
            except Exception as exc:  # a broken plugin must not break the registry
                self.error = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"kerasae: plugin model {self.name!r} from distribution {self.dist!r} "
                    f"could not be loaded ({self.error}); it is skipped",
                    RuntimeWarning, stacklevel=3)
            else:
                self.cls = cls
        if self.error is not None:
            raise KerasaeError(
                f"model {self.name!r} from distribution {self.dist!r} failed to load: "
                f"{self.error}; reinstall or uninstall {self.dist}")
        return self.cls


_entries = {}
_discovered = False


def _check_model_class(cls):
    from kerasae.models.base import Autoencoder

    if not (isinstance(cls, type) and issubclass(cls, Autoencoder)):
        raise TypeError(f"{cls!r} is not a subclass of kerasae.models.base.Autoencoder")
    declared = getattr(cls, "kerasae_api_version", API_VERSION)
    if declared != API_VERSION:
        warnings.warn(
            f"kerasae: model {cls.__name__} was written for kerasae API version {declared}, "
            f"this is version {API_VERSION}", RuntimeWarning, stacklevel=4)


def _disabled_plugins():
    value = os.environ.get("KERASAE_DISABLE_PLUGINS", "").strip()
    if value.lower() in ("", "0", "false", "no"):
        return set()
    if value.lower() in ("1", "true", "yes", "all", "*"):
        return {"*"}
    return {part.strip() for part in value.split(",") if part.strip()}


def _entry_points():
    return importlib.metadata.entry_points(group=GROUP)


def _discover():
    global _discovered
    if _discovered:
        return
    _discovered = True
    disabled = _disabled_plugins()
    found = []
    for ep in _entry_points():
        dist = ep.dist.name if getattr(ep, "dist", None) is not None else "<unknown>"
        if dist != BUILTIN_DIST and ("*" in disabled or dist in disabled or ep.name in disabled):
            continue
        found.append((dist != BUILTIN_DIST, ep.name, dist, ep))
    for _, name, dist, ep in sorted(found, key=lambda t: t[0]):  # built-ins first
        other = _entries.get(name)
        if other is not None:
            if other.dist != dist:
                warnings.warn(
                    f"kerasae: model name {name!r} from distribution {dist!r} is ignored: "
                    f"{other.dist!r} already provides it", RuntimeWarning, stacklevel=3)
            continue
        _entries.setdefault(name, Entry(name, dist, ep.load))


def register_model(name=None, *, dist="<in-process>"):
    """Class decorator: register a model under `name` and make it Keras-serializable.

    Modules listed as entry points use it too; there it marks the class as the one the
    entry point names. `name` defaults to the class name in lower case.
    """
    import keras

    def decorate(cls):
        _discover()  # so a built-in imported directly still reports its distribution
        key = name or cls.__name__.lower()
        cls.registered_name = key
        cls = keras.saving.register_keras_serializable(package="kerasae", name=key)(cls)
        entry = _entries.get(key)
        if entry is None:
            _entries[key] = Entry(key, dist, lambda: cls, cls=cls)
        elif entry.cls is None and entry.error is None:
            entry.cls = cls  # its entry point's module is being imported right now
        elif entry.cls is not cls and entry.dist == "<in-process>":
            entry.cls = cls  # re-registration in the same process replaces the class
        return cls

    return decorate


def list_models(pattern="*"):
    """Sorted names of the registered models that match the glob `pattern`."""
    _discover()
    return sorted(n for n in _entries if fnmatch.fnmatchcase(n, pattern))


def get_entry(name):
    _discover()
    entry = _entries.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(_entries), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "run `kerasae list` to see them"
        raise UnknownModelError(f"unknown model {name!r}: {hint}")
    return entry


def get_model_class(name):
    return get_entry(name).load()


def create_model(name, **kwargs):
    """Build the registered model `name` with its constructor keyword arguments."""
    from kerasae.params import check_params

    cls = get_model_class(name)
    return cls(**check_params(cls, kwargs))


def describe(name):
    """(one-line description, distribution) for `kerasae list`."""
    entry = get_entry(name)
    cls = entry.load()
    doc = (cls.__doc__ or "").strip().splitlines()
    return (doc[0] if doc else ""), entry.dist


def _reset_for_tests():
    global _discovered
    _entries.clear()
    _discovered = False
