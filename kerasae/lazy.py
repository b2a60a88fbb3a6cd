"""Lazy package namespaces: a package's public names, imported from their modules on first use.

A package's `__init__` imports nothing (TensorFlow takes seconds to import, and `kerasae
list`, `info` and the CLI's argument checks must not wait for it), yet
`kerasae.data.load_dataset` works: PEP 562's module `__getattr__` imports the module that
defines a name when the name is first asked for. A name the same path held in kerasae 0.2
resolves too, with a DeprecationWarning (`kerasae.moved`).

    __getattr__, __dir__ = namespace(__name__, '''
        kerasae.data.sources: load_dataset DataSource
        kerasae.data.memory: Dataset
    ''')

The table is text: `module: names`, a line that starts with a name continuing the module
above. `kerasae.models.introspect` reads the same text to resolve a name without importing.
"""

import importlib
import os
import sys

import kerasae.moved as moved


def parse(table):
    """{name: module} from the table's text (see the module docstring)."""
    out, module = {}, None
    for line in table.strip().splitlines():
        head, sep, names = line.strip().partition(":")
        if sep and "." in head:
            module = head.strip()
        else:
            names = line
        if module is None:
            raise ValueError(f"a lazy table must start with `module: names`, got {line!r}")
        out.update(dict.fromkeys(names.split(), module))
    return out


def namespace(package, table):
    """(__getattr__, __dir__) for `package`, whose public names `table` maps to modules."""
    public = parse(table)
    clash = sorted(set(public) & submodules(package))
    if clash:
        # importing the submodule would rebind the package attribute to the module
        raise ValueError(f"{package} exports {clash}, also the names of its submodules")

    def __getattr__(name):
        module = public.get(name)
        if module is not None:
            return getattr(importlib.import_module(module), name)
        try:
            return moved.resolve(package, name)
        except AttributeError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    def __dir__():
        return sorted(public)

    return __getattr__, __dir__


def submodules(package):
    """The names of `package`'s modules and subpackages, from its folder."""
    names = set()
    for folder in sys.modules[package].__path__:
        for entry in os.listdir(folder):
            stem, ext = os.path.splitext(entry)
            if ext == ".py" or os.path.isfile(os.path.join(folder, entry, "__init__.py")):
                names.add(stem)
    return names
