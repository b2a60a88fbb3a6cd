"""Model registry: name -> model class, fed lazily by the `kerasae.models` entry-point group.

Built-in models are listed in kerasae's own pyproject exactly like third-party ones
(timm-style `create_model` / `list_models("*vae*")`). Reading the entry points imports
nothing; a model's module is imported only when that model is created, described or
loaded. A plugin that fails to import, raises while loading or names something that is
not an `Autoencoder` is reported in one warning naming its distribution and the reason;
everything else keeps working, and only asking for that name is an error. Built-ins win
a duplicate name (then the first plugin found), with a warning; `register_model` refuses
a name another distribution provides, since Keras would silently rebind its saved files.
`KERASAE_DISABLE_PLUGINS=1` (or a comma-separated list of distributions or model names)
skips third-party entry points. Guide for plugin authors: docs/plugins.md.
"""
import dataclasses
import difflib
import fnmatch
import importlib.metadata
import os
import re
import warnings

from kerasae.errors import KerasaeError, UnknownModelError

GROUP = "kerasae.models"
BUILTIN_DIST = "kerasae"
API_VERSION = 2  # a plugin may declare `kerasae_api_version`; an unsupported one is a warning
#: plugin API versions this kerasae runs unchanged (1: before metric_names, hooks, set_networks)
SUPPORTED_API_VERSIONS = (1, 2)


@dataclasses.dataclass
class Entry:
    name: str
    dist: str  # the distribution that provides it ("kerasae", a plugin's, or "<in-process>")
    loader: object  # zero-argument callable returning the class
    cls: object = None
    error: str = None  # why loading failed, once it has
    target: str = ""  # the entry point's "module:attr"
    loading: bool = False

    def accepts(self, cls):
        """May `register_model` bind `cls` to this name?"""
        if self.cls is cls or self.loading or self.dist == "<in-process>":
            return True  # the same class, the entry point being imported, or a redefinition
        return self.cls is None and self.target == f"{cls.__module__}:{cls.__qualname__}"

    def load(self):
        if self.cls is None and self.error is None:
            self.loading = True
            try:
                cls = self.loader()
                _check_model_class(cls, self.dist)
            except (Exception, SystemExit) as exc:  # a broken plugin must not break the rest
                self.cls = None  # its module may have registered a class before failing
                first = (str(exc).strip().splitlines() or [""])[0]
                self.error = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
                _warn_once(f"plugin distribution {self.dist!r} could not provide kerasae model "
                           f"{self.name!r} ({self.error}); it is skipped")
            else:
                self.cls = cls
            finally:
                self.loading = False
        if self.error is not None:
            raise KerasaeError(
                f"model {self.name!r} from distribution {self.dist!r} failed to load: "
                f"{self.error}; fix or reinstall {self.dist}, uninstall it, or set "
                f"KERASAE_DISABLE_PLUGINS={self.dist}")
        return self.cls


_entries = {}
_discovered = False
_warned = set()


def _warn_once(message):
    # One line per problem, however often the registry is asked about the broken name.
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _normalize(dist):
    """PEP 503 name: `Kerasae_Contractive` and `kerasae-contractive` are one distribution."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def _check_model_class(cls, dist):
    from kerasae.models.base import Autoencoder

    if not (isinstance(cls, type) and issubclass(cls, Autoencoder)):
        raise TypeError(f"{cls!r} is not a subclass of kerasae.models.base.Autoencoder")
    declared = getattr(cls, "kerasae_api_version", API_VERSION)
    if declared not in SUPPORTED_API_VERSIONS:
        fix = "upgrade kerasae" if isinstance(declared, int) and declared > API_VERSION \
            else f"update {dist}"
        _warn_once(f"kerasae model {cls.__name__} from distribution {dist!r} was written for "
                   f"plugin API version {declared}, this kerasae has version {API_VERSION}; "
                   f"it may misbehave ({fix})")


def _disabled_plugins():
    value = os.environ.get("KERASAE_DISABLE_PLUGINS", "").strip()
    if value.lower() in ("", "0", "false", "no"):
        return set()
    if value.lower() in ("1", "true", "yes", "all", "*"):
        return {"*"}
    return {_normalize(part.strip()) for part in value.split(",") if part.strip()}


def _entry_points():
    return importlib.metadata.entry_points(group=GROUP)


def _dist_name(ep):
    dist = getattr(ep, "dist", None)
    if dist is not None and dist.name:
        return dist.name
    # Entry points without a distribution (odd installs): kerasae's own modules stay built-in.
    return BUILTIN_DIST if ep.value.startswith("kerasae.") else "<unknown>"


def _discover():
    global _discovered
    if _discovered:
        return
    _discovered = True
    disabled = _disabled_plugins()
    found = []
    for ep in _entry_points():
        dist = _dist_name(ep)
        builtin = _normalize(dist) == BUILTIN_DIST
        if not builtin and ("*" in disabled or _normalize(dist) in disabled
                            or _normalize(ep.name) in disabled):
            continue
        found.append((not builtin, ep.name, dist, ep))
    for _, name, dist, ep in sorted(found, key=lambda t: t[0]):  # built-ins first, then as found
        other = _entries.get(name)
        if other is not None:
            if _normalize(other.dist) != _normalize(dist):
                _warn_once(f"kerasae model name {name!r} from distribution {dist!r} is ignored: "
                           f"{other.dist!r} already provides it")
            continue
        _entries[name] = Entry(name, dist, ep.load, target=ep.value)


def register_model(name=None, *, dist="<in-process>"):
    """Class decorator: register a model under `name` and make it Keras-serializable.

    Modules listed as entry points use it too; there it marks the class as the one the
    entry point names. `name` defaults to the class name in lower case.
    """
    import keras

    def decorate(cls):
        _discover()  # so a built-in imported directly still reports its distribution
        key = name or cls.__name__.lower()
        entry = _entries.get(key)
        if entry is not None and not entry.accepts(cls):
            # Keras would silently map "kerasae>key" to the new class and break loading.
            raise KerasaeError(
                f"cannot register {cls.__module__}.{cls.__qualname__} as {key!r}: distribution "
                f"{entry.dist!r} already provides that model; choose another name")
        cls.registered_name = key
        cls = keras.saving.register_keras_serializable(package="kerasae", name=key)(cls)
        if entry is None:
            _entries[key] = Entry(key, dist, lambda: cls, cls=cls)
        else:
            entry.cls, entry.error = cls, None
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
    _warned.clear()
    _discovered = False
