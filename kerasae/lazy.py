"""Lazy package namespaces: a package's public names, imported from their modules on first use.

A package's `__init__` imports nothing (TensorFlow takes seconds to import, and `kerasae
list`, `info` and the CLI's argument checks must not wait for it), yet
`kerasae.data.load_dataset` works: PEP 562's module `__getattr__` imports the module that
defines a name when the name is first asked for. A name the same path held in kerasae 0.2
resolves too, with a DeprecationWarning (`kerasae.moved`).

    __getattr__, __dir__ = lazy.namespace(__name__, lazy.table({
        "kerasae.data.sources": "load_dataset DataSource",
    }))
"""
import importlib

from kerasae import moved


def namespace(package, public):
    """(__getattr__, __dir__) for `package`, whose `public` maps a name to its module."""

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


def table(modules):
    """{name: module} from {module: "its public names, space-separated"}."""
    return {name: module for module, names in modules.items() for name in names.split()}
