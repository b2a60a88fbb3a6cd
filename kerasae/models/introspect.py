"""What `kerasae list` and `kerasae info` print, read from a model's source with `ast`.

Importing a model's module imports Keras and TensorFlow: seconds, for a docstring. Every
thing those two commands print (the docstrings, the constructor's parameters and their
defaults, `generative`) is written in the source, so `read("pkg.module:Class")` parses it
instead. Modules are located package by package with importlib's path finder, so not
even their packages are imported (`importlib.util.find_spec` would import them, and a
package may import TensorFlow). Base classes are followed through the module's own classes
and imports up to `kerasae.models.base.Autoencoder`, for an inherited `__init__`,
`generative` or docstring (in method resolution order, as Python would).

Whatever the source does not fix for certain (a class built at run time, a decorator other
than `register_model`, a metaclass, a name bound twice or only under an `if`) raises
`StaticReadError`: the caller imports the class instead, slower but never wrong, and
`from_class` describes it the same way. This module never imports TensorFlow or Keras.
"""

import ast
import dataclasses
import functools
import importlib.machinery
import importlib.util
import inspect
import sys

from kerasae import lazy
from kerasae.params import _SKIP, merge_params, signature_params

BASE = ("kerasae.models.base", "Autoencoder")  # where base classes stop being followed
REGISTER = (
    "kerasae.models.registry",
    "register_model",
)  # the one decorator known to keep the class
MAX_DEPTH = 24  # import hops plus inheritance depth; a deeper chain is read by importing
_UNSURE = object()  # a name bound more than once, conditionally, or maybe by `import *`
LAZY = "<kerasae.lazy>"  # a package whose other names are its submodules (kerasae.lazy)


class StaticReadError(Exception):
    """The source does not say for certain; import the class instead."""


class Source(str):
    """A default that is not a literal, shown as written in the source."""

    def __repr__(self):
        return str(self)


@dataclasses.dataclass
class ModelInfo:
    module: str  # where the class is defined (a re-exported class: its own module)
    name: str
    doc: str  # cleaned; inherited when the class has none, as `inspect.getdoc` does
    module_doc: str
    params: dict  # {name: default}, the rules of `kerasae.params.signature_params`
    generative: bool
    loss_names: tuple = None  # None where the source does not fix them
    metric_names: tuple = None

    @property
    def summary(self):
        lines = self.doc.strip().splitlines()
        return lines[0] if lines else ""


def from_class(cls):
    """The same description, from an imported class (the fallback)."""
    module = sys.modules.get(cls.__module__)
    return ModelInfo(
        cls.__module__,
        cls.__name__,
        inspect.getdoc(cls) or "",
        inspect.cleandoc(getattr(module, "__doc__", None) or ""),
        signature_params(cls),
        bool(cls.generative),
        _names(getattr(cls, "loss_names", None)),
        _names(getattr(cls, "metric_names", None)),
    )


def read(target):
    """ModelInfo of the class an entry point's "package.module:Class" names, from source."""
    modname, _, attr = (part.strip() for part in target.partition(":"))
    if not modname or not attr.isidentifier():
        raise StaticReadError(f"{target!r} does not name a top-level class as module:Class")
    found = _lookup(modname, [attr], 0)
    mro = _mro(found, 0)
    if BASE not in [(m, node.name) for m, node in mro]:
        raise StaticReadError(f"{target} does not derive from kerasae's Autoencoder")
    if any(_bindings(node.body).get("__doc__") is not None for _, node in mro):
        raise StaticReadError(f"{target}: a class in its bases assigns __doc__")
    init, generative = _member(mro, "__init__"), _member(mro, "generative")
    if init is None or generative is None:
        raise StaticReadError(f"{target}: no __init__ or generative in its bases")
    if not isinstance(init[1], ast.FunctionDef) or init[1].decorator_list:
        raise StaticReadError(f"{target}: __init__ is not a plain method")
    doc = next((d for d in (ast.get_docstring(node) for _, node in mro) if d is not None), "")
    return ModelInfo(
        found[0],
        found[1].name,
        doc,
        ast.get_docstring(_module(found[0])[1]) or "",
        _merged_params(mro),
        bool(_value(*generative)),
        _optional(mro, "loss_names"),
        _optional(mro, "metric_names"),
    )


def read_doc(target):
    """(docstring, module docstring) of the class or function an entry point's
    "package.module:name" names, from source (any extension kind); StaticReadError where
    the source does not say."""
    modname, _, attr = (part.strip() for part in target.partition(":"))
    if not modname or not attr.isidentifier():
        raise StaticReadError(f"{target!r} does not name a top-level object as module:name")
    where, node = _lookup(modname, [attr], 0)
    if not isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        raise StaticReadError(f"{target} is not a class or function defined in the source")
    doc = ast.get_docstring(node)
    if doc is None and isinstance(node, ast.ClassDef) and node.bases:
        raise StaticReadError(f"{target}: no docstring of its own (maybe inherited)")
    return doc or "", ast.get_docstring(_module(where)[1]) or ""


def _names(value):
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _optional(mro, name):
    """A tuple of names the source fixes, else None (only shown, never needed)."""
    try:
        member = _member(mro, name)
        return _names(_value(*member)) if member else None
    except StaticReadError:
        return None


def _spec(name):
    """The module's spec without importing anything (`importlib.util.find_spec` would
    import the parent packages: for a base class in Keras, that is TensorFlow)."""
    if name in sys.modules:
        return getattr(sys.modules[name], "__spec__", None)
    parent, _, _ = name.rpartition(".")
    if not parent:
        return importlib.util.find_spec(name)
    outer = _spec(parent)
    if outer is None or outer.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, outer.submodule_search_locations)


@functools.lru_cache(maxsize=None)
def _module(name):
    try:
        spec = _spec(name)
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
    return spec.submodule_search_locations is not None, tree, _bindings(tree.body)


def _bindings(body):
    """{name: binding} for a module or class body: a definition or assignment statement,
    ("module", name) or ("from", level, module, name) for an import. Names bound twice
    (other than by the same import), in a compound statement or by anything but a plain
    assignment or import are _UNSURE, and after an `import *` (key "*") so is any other."""
    names = {}

    def bind(name, what):
        names[name] = what if names.get(name, what) == what else _UNSURE

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
                    names = {**dict.fromkeys(names, _UNSURE), "*": _UNSURE}
                else:
                    bind(alias.asname or alias.name, ("from", stmt.level, stmt.module, alias.name))
            continue
        lazy = _lazy_namespace(stmt)
        if lazy is not None:  # kerasae.lazy: its public names, imported on first use
            for name, module in lazy.items():
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
                    names[node.id] = _UNSURE
            elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names[node.name] = _UNSURE
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names[alias.asname or alias.name.partition(".")[0]] = _UNSURE
    return names


def _lazy_namespace(stmt):
    """{name: module} of `__getattr__, __dir__ = lazy.namespace(__name__, "...")` (kerasae's
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
        return lazy.parse(ast.literal_eval(stmt.value.args[1]))
    except (ValueError, TypeError, SyntaxError):
        return None


def _lookup(modname, parts, depth):
    """(module, definition statement) that `modname.parts...` names; a module is (name, None)."""
    if depth > MAX_DEPTH:
        raise StaticReadError(f"{modname}.{'.'.join(parts)}: too many hops to follow")
    if not parts:
        return modname, None
    package, _, names = _module(modname)
    what = names.get(parts[0], names.get("*"))
    if what is _UNSURE:
        raise StaticReadError(f"{modname}.{parts[0]} is not bound for certain")
    if what is None:  # not bound in the module: only a submodule can be meant
        if "__getattr__" in names and LAZY not in names:
            raise StaticReadError(f"{modname} makes its attributes at run time")
        if not package:
            raise StaticReadError(f"{modname} has no {parts[0]!r}")
        return _lookup(f"{modname}.{parts[0]}", parts[1:], depth + 1)
    if isinstance(what, tuple) and what[0] == "module":
        return _lookup(what[1], parts[1:], depth + 1)
    if isinstance(what, tuple):  # ("from", level, module, name)
        _, level, source, name = what
        if level:
            here = modname if package else modname.rpartition(".")[0]
            source = importlib.util.resolve_name("." * level + (source or ""), here)
        if source == modname:  # `from keras import layers` in keras itself: the submodule
            return _lookup(f"{modname}.{name}", parts[1:], depth + 1)
        return _lookup(source, [name, *parts[1:]], depth + 1)  # its attribute or submodule
    if isinstance(what, (ast.Assign, ast.AnnAssign)) and isinstance(
        what.value, (ast.Name, ast.Attribute)
    ):  # an alias: Base = Autoencoder
        return _lookup(modname, [*_dotted(what.value), *parts[1:]], depth + 1)
    if len(parts) > 1:
        raise StaticReadError(f"{modname}.{'.'.join(parts)}: an attribute of a definition")
    return modname, what


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise StaticReadError(f"{ast.unparse(node)} is not a plain (dotted) name")
    return [node.id, *parts]


def _mro(ref, depth):
    """The classes `ref` (module, ClassDef) looks attributes up in, by C3 as Python does;
    Autoencoder ends it (its own attributes are read, not those of keras.Model)."""
    modname, node = ref
    if not isinstance(node, ast.ClassDef):
        raise StaticReadError(
            f"{modname}: {getattr(node, 'name', 'it')} is not a class defined in the source"
        )
    if (modname, node.name) == BASE:
        return [ref]
    if depth > MAX_DEPTH or node.keywords:
        raise StaticReadError(f"{modname}.{node.name}: a metaclass or too deep a hierarchy")
    for decorator in node.decorator_list:
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        found = _lookup(modname, _dotted(func), 0)
        if (found[0], getattr(found[1], "name", None)) != REGISTER:
            raise StaticReadError(f"{modname}.{node.name}: decorator {ast.unparse(func)}")
    bases = []
    for base in node.bases:
        parts = _dotted(base)
        if parts == ["object"] and "object" not in _module(modname)[2]:
            continue
        bases.append(_lookup(modname, parts, 0))
    heads = [_mro(base, depth + 1) for base in bases]
    if any("__init_subclass__" in _bindings(b.body) for h in heads for _, b in h):
        raise StaticReadError(f"{modname}.{node.name}: a base changes its subclasses")
    return [ref, *_c3([*heads, bases])]


def _c3(sequences):
    out, sequences = [], [list(s) for s in sequences if s]
    while sequences:
        for seq in sequences:
            head = seq[0]
            if not any(head in s[1:] for s in sequences):
                break
        else:
            raise StaticReadError("no consistent method resolution order")
        out.append(head)
        sequences = [s for s in ([x for x in s if x != head] for s in sequences) if s]
    return out


def _member(mro, name):
    """(module, statement, names the class body binds) of the first class in `mro` whose
    body binds `name`; those names are not the module's where the statement uses them."""
    for modname, node in mro:
        names = _bindings(node.body)
        what = names.get(name)
        if what is _UNSURE or isinstance(what, tuple):
            raise StaticReadError(f"{modname}.{node.name}.{name} is not bound for certain")
        if what is not None:
            return modname, what, frozenset(names)
    return None


def _value(modname, node, local=frozenset(), depth=0):
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
    if isinstance(node, (ast.Name, ast.Attribute)) and _dotted(node)[0] not in local:
        where, what = _lookup(modname, _dotted(node), 0)
        if isinstance(what, (ast.Assign, ast.AnnAssign)):
            return _value(where, what, depth=depth + 1)
    elif isinstance(node, ast.Subscript):
        try:
            return _value(modname, node.value, local, depth + 1)[
                _value(modname, node.slice, local, depth + 1)
            ]
        except (KeyError, IndexError, TypeError):
            pass
    raise StaticReadError(f"{ast.unparse(node)} is not a constant")


def _merged_params(mro):
    """The merged constructor signature (`kerasae.params.merge_params`): each class's own
    `__init__` in method resolution order while it forwards **kwargs, less the constant
    `fixed_params` of its body; Autoencoder's is the last (its **kwargs are Keras's)."""
    levels = []
    for modname, node in mro:
        names = _bindings(node.body)
        init = names.get("__init__")
        if init is None:
            continue
        if init is _UNSURE or not isinstance(init, ast.FunctionDef) or init.decorator_list:
            raise StaticReadError(f"{modname}.{node.name}.__init__ is not a plain method")
        fixed = names.get("fixed_params")
        fixed = () if fixed is None else _value(modname, fixed, frozenset(names))
        if not (isinstance(fixed, (tuple, list)) and all(isinstance(f, str) for f in fixed)):
            raise StaticReadError(f"{modname}.{node.name}.fixed_params is not a tuple of names")
        levels.append((_params(modname, init, frozenset(names)), tuple(fixed)))
        if init.args.kwarg is None or (modname, node.name) == BASE:
            break
    return merge_params(levels)


def _params(modname, init, local):
    args = init.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = {}
    for arg, default in [*zip(positional, defaults), *zip(args.kwonlyargs, args.kw_defaults)]:
        if arg.arg in _SKIP:
            continue
        try:
            params[arg.arg] = None if default is None else _value(modname, default, local)
        except StaticReadError:
            params[arg.arg] = Source(ast.unparse(default))
    return params
