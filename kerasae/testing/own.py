"""Inside a plugin's own tests, a name means that plugin's.

`check_model("sparse_ae")` in the tests of a distribution that provides `sparse_ae` must
check that distribution's model, even where kerasae (or another plugin) provides the name
too and the bare name is refused everywhere else: the distribution under test is read from
the nearest pyproject.toml above the calling test file.
"""

import os
import sys
import tomllib

from kerasae.errors import KerasaeError

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the kerasae package


def own_name(registry, name):
    """`name`, or DIST:NAME where the bare name clashes and the calling project provides it."""
    if not isinstance(name, str) or ":" in name:
        return name
    try:
        registry.entry(name)
        return name
    except KerasaeError:  # unknown or ambiguous: the caller's own, if it provides it
        dist = calling_project()
        if dist is not None and f"{dist}:{name}" in registry:
            return f"{dist}:{name}"
        return name  # asked for as it is, the registry's own error then says why


def calling_project():
    """The [project] name of the nearest pyproject.toml above the first caller outside
    kerasae, or None."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(HERE):
        frame = frame.f_back
    if frame is None:
        return None
    folder = os.path.dirname(os.path.abspath(frame.f_code.co_filename))
    while True:
        path = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(path):
            try:
                with open(path, "rb") as f:
                    return tomllib.load(f).get("project", {}).get("name")
            except (OSError, tomllib.TOMLDecodeError):
                return None
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent
