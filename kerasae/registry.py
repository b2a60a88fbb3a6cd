"""Entry-point registries: the one mechanism behind every extension point (DESIGN.md).

A `Registry` maps a name to what a plugin provides (a model class, a latent sampler, a data
source, an export format or layout, a network builder), fed lazily by an entry-point group
(`kerasae.models`, `kerasae.samplers`, `kerasae.datasets`, `kerasae.exporters`,
`kerasae.architectures`). kerasae's own are listed in its pyproject exactly like a plugin's.
Reading the entry points imports nothing; a module is imported when one of its names is
used (timm's `create_model` / `list_models("*vae*")` pattern, for every kind).

A plugin that fails to import, raises while loading or provides something the registry does
not accept is reported in one warning naming its distribution and the reason; everything
else keeps working, and only asking for that name is an error. When several distributions
provide one name (kerasae among them or not), the bare name is refused with the qualified
ones, DIST:NAME (`kerasae:sparse_ae`, `kerasae-oldzoo:sparse_ae`), so no command runs a
model the user did not mean; one warning names them, once per set of installed plugins.
A saved file keeps the name it was saved under (`reference`: kerasae's own keep the bare
name) and is read back by it. `register` in a session refuses a name a distribution provides.
`KERASAE_DISABLE_PLUGINS=1` (or a comma-separated list of distributions or names) skips
third-party entry points. Guide for plugin authors: docs/plugins.md.
"""

import difflib
import fnmatch
import importlib.metadata

import kerasae.moved as moved
from kerasae.entry_points import (
    BUILTIN_DIST,
    IN_PROCESS,
    SHOW_ALL,
    Entry,
    disabled_plugins,
    dist_name,
    first_line,
    normalize,
    target_of,
    warn_once,
)
from kerasae.errors import KerasaeError


class Registry:
    """Name -> object for one extension kind, fed by the entry-point group `group`.

    accept(obj, dist): raise TypeError (or KerasaeError) when `obj` is not a valid `kind`.
    name_attr: the attribute the object is told its name in (`registered_name` for models:
    config.json, the export manifest); bind(entry, obj): more to do on binding (a model
    class becomes Keras-serializable under its name).
    """

    def __init__(
        self,
        kind,
        group,
        accept=None,
        bind=None,
        unknown_error=KerasaeError,
        listing="kerasae list --kind {plural}",
        plural=None,
        name_attr="name",
    ):
        self.kind, self.group, self.name_attr = kind, group, name_attr
        self.plural = plural or f"{kind}s"
        self.accept, self.bind_hook = accept, bind
        self.unknown_error = unknown_error
        self.listing = listing.format(plural=self.plural)
        self.reset()

    def reset(self):
        """Forget every entry: the next question reads the entry points again."""
        self._entries = {}  # bare name -> [Entry, ...]: kerasae's own first, then plugins
        self._discovered = False

    def state(self):
        """What `restore` puts back (tests install fake plugins and clean up after)."""
        return {k: list(v) for k, v in self._entries.items()}, self._discovered

    def restore(self, state):
        self._entries, self._discovered = {k: list(v) for k, v in state[0].items()}, state[1]

    def forget(self, name):
        """Drop the entries of `name` (a class registered in a test, say)."""
        self._entries.pop(name, None)

    # ------------------------------------------------------------------ discovery
    def _entry_points(self):
        return importlib.metadata.entry_points(group=self.group)

    def _discover(self):
        if self._discovered:
            return
        self._discovered = True
        disabled = disabled_plugins()
        found = []
        for ep in self._entry_points():
            dist = dist_name(ep)
            builtin = normalize(dist) == BUILTIN_DIST
            if not builtin and (
                "*" in disabled or normalize(dist) in disabled or normalize(ep.name) in disabled
            ):
                continue
            found.append((not builtin, ep.name, dist, ep))
        for _, name, dist, ep in sorted(found, key=lambda t: t[0]):  # built-ins first
            same = self._entries.setdefault(name, [])
            if any(normalize(e.dist) == normalize(dist) for e in same):
                continue  # one distribution seen twice (an editable install and a copy)
            same.append(Entry(name, dist, ep.load, target=ep.value, registry=self))
        for name, same in self._entries.items():
            self._set_references(name, same)

    def _set_references(self, name, same):
        """Saved files keep the bare name for kerasae's own or the only provider (as they
        were saved), DIST:NAME for the rest; users name every provider of a clash DIST:NAME."""
        owner = same[0] if len(same) == 1 or same[0].builtin else None
        for e in same:
            e.reference = name if e is owner else e.qualified
            e.listed = name if len(same) == 1 else e.qualified
        if len(same) > 1:
            dists = " and ".join(repr(e.dist) for e in same)
            warn_once(
                f"kerasae {self.kind} name {name!r} is provided by distributions {dists}; "
                f"{name!r} alone is refused, use {' or '.join(e.qualified for e in same)}",
                per_install=True,
            )

    def entries(self):
        self._discover()
        return [e for same in self._entries.values() for e in same]

    # ------------------------------------------------------------------ loading
    def load_entry(self, entry):
        """The entry's object, loaded (and checked) once; KerasaeError if it cannot be."""
        if entry.obj is None and entry.error is None:
            try:
                obj = entry.loader()
                if self.accept is not None:
                    self.accept(obj, entry.dist)
                if entry.obj is not obj:  # not already bound by `register` on import
                    self._bind(entry, obj)
            except (Exception, SystemExit) as exc:  # a broken plugin must not break the rest
                self.mark_broken(entry, first_line(exc))
        if entry.error is not None:
            raise KerasaeError(
                f"{self.kind} {entry.name!r} from distribution {entry.dist!r} failed to load: "
                f"{entry.error}; fix or reinstall {entry.dist}, uninstall it, or set "
                f"KERASAE_DISABLE_PLUGINS={entry.dist}"
            )
        return entry.obj

    def mark_broken(self, entry, error, warn=True):
        """Record that `entry` cannot load (`error`: why) and warn once, naming its
        distribution; asking for it is then an error, everything else keeps working."""
        entry.obj = None  # its module may have registered something before failing
        entry.error = error
        if warn:
            warn_once(
                f"plugin distribution {entry.dist!r} could not provide kerasae "
                f"{self.kind} {entry.name!r} ({error}); it is skipped"
            )

    def _bind(self, entry, obj, declared=None):
        holder = next((e for e in self.entries() if e.obj is obj and e is not entry), None)
        if holder is not None:
            raise TypeError(
                f"{getattr(obj, '__qualname__', obj)} is already registered as "
                f"{holder.reference!r} by {holder.dist!r}; list a subclass of it "
                "instead"
            )
        own = declared or (vars(obj).get(self.name_attr) if isinstance(obj, type) else None)
        if own is not None and own not in (entry.name, entry.reference):
            what = f"class {obj.__qualname__}" if isinstance(obj, type) else repr(obj)
            warn_once(
                f"distribution {entry.dist!r} lists kerasae {self.kind} {entry.name!r} "
                f"as entry point, but its {what} registers "
                f"itself as {own!r}; it is known as {entry.reference!r} (make the "
                "two names the same)"
            )
        try:
            setattr(obj, self.name_attr, entry.reference)
        except (AttributeError, TypeError):  # a function or a frozen object: its entry names it
            pass
        if self.bind_hook is not None:
            self.bind_hook(entry, obj)
        entry.obj, entry.error = obj, None

    def entry(self, name, saved=False):
        """The entry for `name` (a bare name, or DIST:NAME to pick one distribution's);
        `saved`: the name a saved file recorded (`reference`), which a clash since does
        not make ambiguous."""
        self._discover()
        dist, sep, bare = str(name).rpartition(":")
        same = self._entries.get(bare if sep else name, [])
        if sep:
            found = next((e for e in same if normalize(e.dist) == normalize(dist)), None)
        else:
            key = "reference" if saved else "listed"
            found = next((e for e in same if getattr(e, key) == name), None)
            if found is None and same:
                choices = " or ".join(e.qualified for e in same)
                raise KerasaeError(
                    f"{self.kind} name {name!r} is provided by several "
                    f"distributions; choose one: {choices}"
                )
        if found is None:
            raise self.unknown_error(self.unknown_message(name))
        return found

    def unknown_message(self, name):
        known = [e.listed for e in self.entries()]
        close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
        if close:
            return f"unknown {self.kind} {name!r}: did you mean {', '.join(close)}?"
        if 0 < len(known) <= SHOW_ALL:
            return f"unknown {self.kind} {name!r}; use one of {', '.join(sorted(known))}"
        return f"unknown {self.kind} {name!r}: run `{self.listing}` to see them"

    def get(self, name, saved=False):
        """The object registered as `name`, loaded (`saved`: as `entry`)."""
        return self.load_entry(self.entry(name, saved))

    def names(self, pattern="*"):
        """Sorted names matching the glob `pattern`: bare, or DIST:NAME where names clash."""
        return sorted(
            e.listed
            for e in self.entries()
            if fnmatch.fnmatchcase(e.listed, pattern) or fnmatch.fnmatchcase(e.name, pattern)
        )

    def __contains__(self, name):
        try:
            self.entry(name)
        except KerasaeError:
            return False
        return True

    # ------------------------------------------------------------------ registering
    def register(self, name=None, *, dist=IN_PROCESS):
        """Decorator: register an object under `name` (default: its name in lower case).

        Modules listed as entry points use it too; there the entry point's name wins (a
        different `name` is a warning)."""

        def decorate(obj):
            self._discover()  # so a built-in imported directly still reports its distribution
            key = name or obj.__name__.lower()
            listed = [
                e
                for e in self.entries()
                if e.obj is None and e.error is None and e.target == target_of(obj)
            ]
            if listed:  # the object an entry point names: bind it to that entry
                self._bind(listed[0], obj, declared=key)
                return obj
            same = self._entries.get(key, [])
            entry = next((e for e in same if self._accepts(e, obj)), None)
            named = [e for e in same if e.target.partition(":")[0] == obj.__module__]
            if entry is None and named:  # the entry point names this module, not this class
                raise KerasaeError(
                    f"entry point {key!r} of distribution {named[0].dist!r} names "
                    f"{named[0].target}, but {obj.__module__} registers its class "
                    f"{obj.__qualname__} as {key!r}: correct the class name in the entry point"
                )
            if entry is None and same:
                raise KerasaeError(
                    f"cannot register {obj.__module__}.{obj.__qualname__} as {key!r}: "
                    f"distribution {same[0].dist!r} already provides that {self.kind}; "
                    "choose another name"
                )
            if entry is None:
                entry = Entry(key, dist, lambda: obj, reference=key, listed=key, registry=self)
                self._entries[key] = [entry]
            self._bind(entry, obj)
            return obj

        return decorate

    @staticmethod
    def _accepts(entry, obj):
        """May `register` bind `obj` to this existing entry?"""
        if entry.obj is obj or entry.dist == IN_PROCESS:
            return True  # the same object, or a redefinition (a notebook cell run again)
        return entry.obj is None and entry.target == target_of(obj)


def __getattr__(name):  # PEP 562: the model registry's names, here in 0.2 (deprecated)
    return moved.resolve(__name__, name)
