"""What kerasae remembers about the installed plugins, until they change.

Two things are worth remembering between commands, keyed by the installed plugin
distributions and their versions (`KERASAE_CACHE/plugins.json`):

- which plugin entry points import (`import_errors`): `kerasae list` and `info` read model
  sources without importing them (TensorFlow takes seconds), so a plugin whose module
  raises looked healthy there. When the plugins change, one subprocess imports each
  plugin's entry point and records what failed; later listings read the record.
- which warnings were shown (`shown_first_time`): a name clash is news once, when a plugin
  is installed, not on every later command.

The file keeps the records of the last MAX_SETS plugin sets, so venvs that share one
cache (the key holds the interpreter) or a plugin tried and removed do not check again
each time they alternate. Reading the record imports nothing but the standard library; a
record that cannot be written (a read-only home) only means the next command checks again.
"""

import hashlib
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time

from kerasae.entry_points import BUILTIN_DIST, GROUPS, dist_name, first_line, normalize
from kerasae.io import cache_dir, read_json, write_json

FILE = "plugins.json"
CHECK_TIMEOUT_S = 300  # importing every plugin once (TensorFlow included)
MAX_SETS = 8  # plugin sets remembered: the least recently used is forgotten first


def plugin_entry_points():
    """(group, entry point, distribution) of every kerasae entry point a plugin lists."""
    for group in GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            dist = dist_name(ep)
            if normalize(dist) != BUILTIN_DIST:
                yield group, ep, dist


def installed_key():
    """A digest of the plugin distributions, their versions and entry points."""
    rows = sorted(
        (group, ep.name, ep.value, dist, _version(ep)) for group, ep, dist in plugin_entry_points()
    )
    return hashlib.sha256(json.dumps([sys.executable, rows]).encode()).hexdigest()[:16]


def _version(ep):
    dist = getattr(ep, "dist", None)
    return getattr(dist, "version", "") or ""


def _path():
    return os.path.join(cache_dir(), FILE)


def _records():
    """{key: record} of the plugin sets remembered (none from a missing or older file)."""
    try:
        sets = read_json(_path()).get("sets")
    except (OSError, ValueError, AttributeError):
        sets = None
    return sets if isinstance(sets, dict) else {}


def _record(key):
    """The record of the plugins installed now (an empty one for a set not seen before)."""
    record = _records().get(key)
    return record if isinstance(record, dict) else {"key": key, "shown": []}


def _save(record):
    sets = _records()
    sets[record["key"]] = {**record, "used": time.time()}
    for old in sorted(sets, key=lambda k: sets[k].get("used", 0))[: -MAX_SETS or None]:
        del sets[old]
    try:
        write_json(_path(), {"sets": sets})
    except OSError:
        pass  # nothing remembered: the next command checks again


def shown_first_time(message):
    """True the first time `message` is asked about since the plugins last changed."""
    record = _record(installed_key())
    if message in record["shown"]:
        return False
    record["shown"].append(message)
    _save(record)
    return True


def import_errors():
    """{"module:attr": first line of the error} for the plugin entry points that do not
    import, checked in a subprocess when the installed plugins changed, else remembered."""
    key = installed_key()
    record = _record(key)
    if "errors" not in record:
        if not any(True for _ in plugin_entry_points()):
            record["errors"] = {}
        else:
            record["errors"] = _check_in_subprocess()
        _save(record)
    return record["errors"]


def _check_in_subprocess():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kerasae.plugin_state"],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            env=env,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        return {"*": f"the plugin check did not finish ({first_line(exc)})"}


def check_imports():
    """Import every plugin entry point's object; {"module:attr": error} of those that fail."""
    errors = {}
    for _, ep, _ in plugin_entry_points():
        try:
            module, _, attr = ep.value.partition(":")
            obj = importlib.import_module(module.strip())
            for part in attr.strip().split(".") if attr.strip() else ():
                obj = getattr(obj, part)
        except (Exception, SystemExit) as exc:
            errors[ep.value] = first_line(exc)
    return errors


if __name__ == "__main__":
    print(json.dumps(check_imports()))
