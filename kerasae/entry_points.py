"""Entry points as kerasae reads them: which distribution provides a name, which plugins the
user disabled (`KERASAE_DISABLE_PLUGINS`), and the entry of one name in a registry.

Distribution names compare as PEP 503 normalises them; a problem (a broken plugin, a
clash) is warned about once per process, whichever registry meets it.
"""

import dataclasses
import importlib.metadata
import os
import re
import warnings

BUILTIN_DIST = "kerasae"
IN_PROCESS = "<in-process>"
SHOW_ALL = 12  # an unknown name lists every known one up to this many, else names the listing

warned = set()  # one warning per problem, whichever registry and however often it is asked


#: where warnings shown once per set of installed plugins are remembered (the CLI sets it:
#: a clash is news when a plugin is installed, noise on every later command)
remembered = None


def warn_once(message, per_install=False):
    """Warn once per process; with `per_install`, once per set of installed plugins too
    (where `remembered` is set)."""
    if message in warned:
        return
    warned.add(message)
    if per_install and remembered is not None and not remembered(message):
        return
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def normalize(dist):
    """PEP 503 name: `Kerasae_Contractive` and `kerasae-contractive` are one distribution."""
    return re.sub(r"[-_.]+", "-", dist).lower()


def target_of(obj):
    """ "module:qualname", as an entry point names `obj`."""
    return f"{obj.__module__}:{obj.__qualname__}"


def first_line(exc):
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclasses.dataclass
class Entry:
    name: str  # the entry point's (or `register`'s) name: the name that wins
    dist: str  # the distribution that provides it ("kerasae", a plugin's, or "<in-process>")
    loader: object  # zero-argument callable returning the object
    obj: object = None
    error: str = None  # why loading failed, once it has
    target: str = ""  # the entry point's "module:attr"
    reference: str = ""  # how saved files name it: `name`, or `DIST:name` beside kerasae's
    listed: str = ""  # how users name it: `name`, or `DIST:name` wherever names clash
    registry: object = dataclasses.field(default=None, repr=False)

    def load(self):
        """The object, loaded (and checked) once; KerasaeError if it cannot be."""
        return self.registry.load_entry(self)

    @property
    def qualified(self):
        return f"{self.dist}:{self.name}"

    @property
    def builtin(self):
        return normalize(self.dist) == BUILTIN_DIST


def disabled_plugins():
    value = os.environ.get("KERASAE_DISABLE_PLUGINS", "").strip()
    if value.lower() in ("", "0", "false", "no"):
        return set()
    if value.lower() in ("1", "true", "yes", "all", "*"):
        return {"*"}
    return {normalize(part.strip()) for part in value.split(",") if part.strip()}


def dist_name(ep):
    dist = getattr(ep, "dist", None)
    if dist is not None and dist.name:
        return dist.name
    # entry points without a distribution (odd installs): kerasae's own modules stay built-in
    return BUILTIN_DIST if ep.value.startswith("kerasae.") else "<unknown>"


#: the entry-point groups of kerasae's extension points
GROUPS = (
    "kerasae.models",
    "kerasae.samplers",
    "kerasae.datasets",
    "kerasae.exporters",
    "kerasae.architectures",
)


def plugin_distributions():
    """The installed distributions, other than kerasae, that list a kerasae entry point."""
    found = set()
    for group in GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            name = dist_name(ep)
            if name not in (BUILTIN_DIST, IN_PROCESS):
                found.add(name)
    return found


def blame(exc):
    """(distribution, where) of the innermost frame of `exc`'s traceback that runs a
    plugin's code ("DemoAE.after_step"), or None when kerasae or a library raised it: a
    plugin's bug is reported as the plugin's, not as kerasae's internal error."""
    plugins = {normalize(d) for d in plugin_distributions()}
    owners = importlib.metadata.packages_distributions()
    found, tb = None, exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        module = type(owner).__module__ if owner is not None else frame.f_globals["__name__"]
        for dist in owners.get(module.partition(".")[0], ()):
            if normalize(dist) in plugins:
                function = frame.f_code.co_name.removeprefix("tf__")  # a traced step
                place = type(owner).__qualname__ if owner is not None else module
                found = (dist, f"{place}.{function}")
        tb = tb.tb_next
    return found
