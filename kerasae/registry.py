"""Model registry: name -> model class, fed lazily by the `kerasae.models` entry-point group.

Built-in models are listed in kerasae's own pyproject exactly like third-party ones
(timm-style `create_model` / `list_models("*vae*")`). Reading the entry points imports
nothing; a model's module is imported only when that model is created, described or
loaded. A plugin that fails to import, raises while loading or names something that is
not an `Autoencoder` is reported in one warning naming its distribution and the reason;
everything else keeps working, and only asking for that name is an error.

The entry point's name is the model's name everywhere (a class that registers itself
under another name gets a warning naming both). When several distributions provide one
name, each stays reachable as DIST:NAME (`kerasae-contractive:cae`); the bare name means
the built-in, or is refused with both names when only plugins clash; one warning names
them. `register_model` in a session refuses a name a distribution provides, since Keras
would silently rebind its saved files.
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
    name: str  # the entry point's (or register_model's) name: the name that wins
    dist: str  # the distribution that provides it ("kerasae", a plugin's, or "<in-process>")
    loader: object  # zero-argument callable returning the class
    cls: object = None
    error: str = None  # why loading failed, once it has
    target: str = ""  # the entry point's "module:attr"
    reference: str = ""  # how users and saved files name it: `name`, or `DIST:name` on a clash

    @property
    def qualified(self):
        return f"{self.dist}:{self.name}"

    def accepts(self, cls):
        """May `register_model` bind `cls` to this entry?"""
        if self.cls is cls or self.dist == "<in-process>":
            return True  # the same class, or a redefinition (a notebook cell run again)
        return self.cls is None and self.target == _target(cls)

    def load(self):
        if self.cls is None and self.error is None:
            try:
                cls = self.loader()
                _check_model_class(cls, self.dist)
                if self.cls is not cls:  # not already bound by register_model on import
                    _bind(self, cls)
            except (Exception, SystemExit) as exc:  # a broken plugin must not break the rest
                self.cls = None  # its module may have registered a class before failing
                first = (str(exc).strip().splitlines() or [""])[0]
                self.error = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
                _warn_once(f"plugin distribution {self.dist!r} could not provide kerasae model "
                           f"{self.name!r} ({self.error}); it is skipped")
        if self.error is not None:
            raise KerasaeError(
                f"model {self.name!r} from distribution {self.dist!r} failed to load: "
                f"{self.error}; fix or reinstall {self.dist}, uninstall it, or set "
                f"KERASAE_DISABLE_PLUGINS={self.dist}")
        return self.cls


_entries = {}  # bare name -> [Entry, ...]: the built-in first, then plugins as found
_discovered = False
_warned = set()


def _target(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _bind(entry, cls, declared=None):
    """Make `cls` the class of `entry`, known by the entry's name everywhere: the registry,
    `registered_name` (config.json, the export manifest) and Keras's serialization key.
    `declared`: the name the class gave `register_model`, if any."""
    import keras

    holder = next((e for e in _all_entries() if e.cls is cls and e is not entry), None)
    if holder is not None:
        raise TypeError(f"{cls.__qualname__} is already registered as {holder.reference!r} by "
                        f"{holder.dist!r}; list a subclass of it instead")
    own = declared or vars(cls).get("registered_name")
    if own is not None and own not in (entry.name, entry.reference):
        _warn_once(f"distribution {entry.dist!r} lists kerasae model {entry.name!r} as entry "
                   f"point, but its class {cls.__qualname__} registers itself as {own!r}; "
                   f"it is known as {entry.reference!r} (make the two names the same)")
    cls.registered_name = entry.reference
    keras.saving.register_keras_serializable(package="kerasae", name=entry.reference)(cls)
    entry.cls, entry.error = cls, None


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
        same = _entries.setdefault(name, [])
        if any(_normalize(e.dist) == _normalize(dist) for e in same):
            continue  # one distribution seen twice (e.g. an editable install and a copy)
        same.append(Entry(name, dist, ep.load, target=ep.value))
    for name, same in _entries.items():
        _set_references(name, same)


def _set_references(name, same):
    """The bare name goes to the built-in, or to the only provider; the rest are DIST:NAME."""
    owner = same[0] if len(same) == 1 or _normalize(same[0].dist) == BUILTIN_DIST else None
    for e in same:
        e.reference = name if e is owner else e.qualified
    if len(same) > 1:
        dists = " and ".join(repr(e.dist) for e in same)
        meaning = f"{name!r} is {owner.dist}'s" if owner else f"{name!r} alone is refused"
        others = ", ".join(e.qualified for e in same if e is not owner)
        _warn_once(f"kerasae model name {name!r} is provided by distributions {dists}; "
                   f"{meaning}, use {others} for the other{'s' if len(same) > 2 else ''}")


def register_model(name=None, *, dist="<in-process>"):
    """Class decorator: register a model under `name` and make it Keras-serializable.

    Modules listed as entry points use it too; there the entry point's name wins (a
    different `name` is a warning). `name` defaults to the class name in lower case.
    """
    def decorate(cls):
        _discover()  # so a built-in imported directly still reports its distribution
        key = name or cls.__name__.lower()
        listed = [e for e in _all_entries()
                  if e.cls is None and e.error is None and e.target == _target(cls)]
        if listed:  # the class an entry point names: bind it to that entry, whatever `name`
            _bind(listed[0], cls, declared=key)
            return cls
        same = _entries.get(key, [])
        entry = next((e for e in same if e.accepts(cls)), None)
        if entry is None and same:
            # Keras would silently map "kerasae>key" to the new class and break loading.
            raise KerasaeError(
                f"cannot register {cls.__module__}.{cls.__qualname__} as {key!r}: distribution "
                f"{same[0].dist!r} already provides that model; choose another name")
        if entry is None:
            entry = Entry(key, dist, lambda: cls, reference=key)
            _entries[key] = [entry]
        _bind(entry, cls)
        return cls

    return decorate


def _all_entries():
    _discover()
    return [e for same in _entries.values() for e in same]


def list_models(pattern="*"):
    """Sorted names of the registered models that match the glob `pattern`: bare names, and
    DIST:NAME for a name that several distributions provide (see `get_entry`)."""
    return sorted(e.reference for e in _all_entries()
                  if fnmatch.fnmatchcase(e.reference, pattern)
                  or fnmatch.fnmatchcase(e.name, pattern))


def get_entry(name):
    """The entry for `name` (a bare name, or DIST:NAME to pick one distribution's)."""
    _discover()
    dist, sep, bare = str(name).rpartition(":")
    same = _entries.get(bare if sep else name, [])
    if sep:
        entry = next((e for e in same if _normalize(e.dist) == _normalize(dist)), None)
    else:
        entry = next((e for e in same if e.reference == name), None)
        if entry is None and same:
            choices = " or ".join(e.qualified for e in same)
            raise KerasaeError(f"model name {name!r} is provided by several distributions; "
                               f"choose one: {choices}")
    if entry is None:
        known = [e.reference for e in _all_entries()]
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
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


def _reset_for_tests():
    global _discovered
    _entries.clear()
    _warned.clear()
    _discovered = False
