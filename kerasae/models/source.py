"""Reading Python modules without importing them: what a name is bound to, followed through
imports, aliases and kerasae's lazy package tables, with `ast` alone.

`kerasae list`/`info` describe a model from its source (`kerasae.models.introspect`), since
importing its module imports TensorFlow. Modules are located package by package with
importlib's path finder, so not even their packages are imported. Whatever the source does
not fix for certain (a name bound twice or only under an `if`, a module that makes its
attributes at run time) raises `StaticReadError`: the caller imports instead.
"""

import ast
import functools
import importlib.machinery
import importlib.util
import sys

from kerasae.lazy import parse

MAX_DEPTH = 24  # import hops plus inheritance depth; a deeper chain is read by importing
UNSURE = object()  # a name bound more than once, conditionally, or maybe by `import *`
LAZY = "<kerasae.lazy>"  # a package whose other names are its submodules (kerasae.lazy)


class StaticReadError(Exception):
    """The source does not say for certain; import the class instead."""


class Source(str):
    """A default that is not a literal, shown as written in the source."""

    def __repr__(self):
        return str(self)


def find_spec(name):
    """The module's spec without importing anything (`importlib.util.find_spec` would
    import the parent packages: for a base class in Keras, that is TensorFlow)."""
    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    parent, _, _ = name.rpartition(".")
    if not parent:
        return importlib.util.find_spec(name)
    outer = find_spec(parent)
    if outer is None or outer.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, outer.submodule_search_locations)


@functools.lru_cache(maxsize=None)
def module_source(name):
    try:
        spec = find_spec(name)
    except Exception as exc:  # noqa: BLE001 - whatever it is, importing will say it better
        raise StaticReadError(f"{name}: {type(exc).__name__}: {exc}") from None
    if spec is None:  # not installed, or in a package that builds its own __path__
        raise StaticReadError(f"no module named {name!r} found without importing")
    try:
        source = spec.loader.get_source(name) if spec.loader else None
        tree = ast.parse(source) if source is not None else None
    except (ImportError, OSError, SyntaxError, ValueError) as exc:
        raise StaticReadError(f"{name}: {type(exc).__name__}: {exc}") from None
    if tree is None:
        raise StaticReadError(f"{name} has no Python source")
    # (is a package, tree, top-level name -> the statement or the import binding it)
    return spec.submodule_search_locations is not None, tree, bindings(tree.body)


def bindings(body):
    """{name: binding} for a module or class body: a definition or assignment statement,
    ("module", name) or ("from", level, module, name) for an import. Names bound twice
    (other than by the same import), in a compound statement or by anything but a plain
    assignment or import are UNSURE, and after an `import *` (key "*") so is any other."""
    names = {}

    def bind(name, what):
        names[name] = what if names.get(name, what) == what else UNSURE

    for stmt in body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            bind(stmt.name, stmt)
            continue
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:  # `import a.b` binds a, `import a.b as c` binds c to a.b
                root = alias.name if alias.asname else alias.name.partition(".")[0]
                bind(alias.asname or root, ("module", root))
            continue
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    names = {**dict.fromkeys(names, UNSURE), "*": UNSURE}
                else:
                    bind(alias.asname or alias.name, ("from", stmt.level, stmt.module, alias.name))
            continue
        table = lazy_namespace(stmt)
        if table is not None:  # kerasae.lazy: its public names, imported on first use
            for name, module in table.items():
                bind(name, ("from", 0, module, name))
            bind(LAZY, LAZY)
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if all(isinstance(t, ast.Name) for t in targets):
                for t in targets:
                    bind(t.id, stmt)
                continue
        for node in ast.walk(stmt):  # anything else that stores: unsure (X.a = 1 included)
            if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)) and not isinstance(
                node.ctx, ast.Load
            ):
                while isinstance(node, (ast.Attribute, ast.Subscript)):
                    node = node.value
                if isinstance(node, ast.Name):
                    names[node.id] = UNSURE
            elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names[node.name] = UNSURE
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names[alias.asname or alias.name.partition(".")[0]] = UNSURE
    return names


def lazy_namespace(stmt):
    """{name: module} of `__getattr__, __dir__ = namespace(__name__, "...")` (kerasae's
    packages: `kerasae.lazy`), where the table is a literal; None for any other statement."""
    if not (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Tuple)
        and [getattr(t, "id", None) for t in stmt.targets[0].elts] == ["__getattr__", "__dir__"]
        and isinstance(stmt.value, ast.Call)
        and len(stmt.value.args) == 2
        and ast.unparse(stmt.value.func).endswith("namespace")
    ):
        return None
    try:
        return parse(ast.literal_eval(stmt.value.args[1]))
    except (ValueError, TypeError, SyntaxError):
        return None


def lookup(modname, parts, depth):
    """(module, definition statement) that `modname.parts...` names; a module is (name, None)."""
    if depth > MAX_DEPTH:
        raise StaticReadError(f"{modname}.{'.'.join(parts)}: too many hops to follow")
    if not parts:
        return modname, None
    package, _, names = module_source(modname)
    what = names.get(parts[0], names.get("*"))
    if what is UNSURE:
        raise StaticReadError(f"{modname}.{parts[0]} is not bound for certain")
    if what is None:  # not bound in the module: only a submodule can be meant
        if "__getattr__" in names and LAZY not in names:
            raise StaticReadError(f"{modname} makes its attributes at run time")
        if not package:
            raise StaticReadError(f"{modname} has no {parts[0]!r}")
        return lookup(f"{modname}.{parts[0]}", parts[1:], depth + 1)
    if isinstance(what, tuple) and what[0] == "module":
        return lookup(what[1], parts[1:], depth + 1)
    if isinstance(what, tuple):  # ("from", level, module, name)
        _, level, source, name = what
        if level:
            here = modname if package else modname.rpartition(".")[0]
            source = importlib.util.resolve_name("." * level + (source or ""), here)
        if source == modname:  # `from keras import layers` in keras itself: the submodule
            return lookup(f"{modname}.{name}", parts[1:], depth + 1)
        return lookup(source, [name, *parts[1:]], depth + 1)  # its attribute or submodule
    if isinstance(what, (ast.Assign, ast.AnnAssign)) and isinstance(
        what.value, (ast.Name, ast.Attribute)
    ):  # an alias: Base = Autoencoder
        return lookup(modname, [*dotted(what.value), *parts[1:]], depth + 1)
    if len(parts) > 1:
        raise StaticReadError(f"{modname}.{'.'.join(parts)}: an attribute of a definition")
    return modname, what


def dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise StaticReadError(f"{ast.unparse(node)} is not a plain (dotted) name")
    return [node.id, *parts]


def value_of(modname, node, local=frozenset(), depth=0):
    """The value an expression (or an assignment's value) has, where the source fixes it:
    a literal, a module constant, or an item of one (LOSS_NAMES["js"]); `local` are the
    class body's own names, which would shadow the module's."""
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        node = node.value
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if depth > MAX_DEPTH:
        raise StaticReadError("constant too deep to follow")
    if isinstance(node, (ast.Name, ast.Attribute)) and dotted(node)[0] not in local:
        where, what = lookup(modname, dotted(node), 0)
        if isinstance(what, (ast.Assign, ast.AnnAssign)):
            return value_of(where, what, depth=depth + 1)
    elif isinstance(node, ast.Subscript):
        try:
            return value_of(modname, node.value, local, depth + 1)[
                value_of(modname, node.slice, local, depth + 1)
            ]
        except (KeyError, IndexError, TypeError):
            pass
    raise StaticReadError(f"{ast.unparse(node)} is not a constant")
